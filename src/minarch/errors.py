"""The one exception hierarchy.

A ``MinarchError`` is the user's to fix (a bad study file, missing data, an
unreachable database): the CLI prints its message on one line and exits with
code 2. Anything else is a bug and keeps its traceback (exit code 1).
Messages name the field or file and say what was expected. An interruption
(Ctrl-C, SIGTERM) is neither: ``Interrupted`` carries what is left to resume.
"""

import signal


class MinarchError(Exception):
    """Bad input: the message says what was wrong and how to fix it."""


class OptionError(MinarchError):
    """A bad argument of an API function, which is also a command-line option.

    The message names the keyword argument (``device='cuda': ...``), as a
    Python caller wrote it; the CLI prints ``flag_message()`` (``--device cuda: ...``).
    """

    def __init__(self, option: str, value: object, problem: str):
        self.option, self.value, self.problem = option, value, problem
        super().__init__(f"{option}={value!r}: {problem}")

    def flag_message(self) -> str:
        """The same message as the command line spells the option."""
        flag = "--" + self.option.replace("_", "-")
        return f"{flag} {self.value}: {self.problem}"


class SpecError(MinarchError):
    """A study file or study field is invalid."""


class DataError(MinarchError):
    """A dataset is unknown, missing, corrupt or fails its checksum."""


class ModelError(MinarchError):
    """A model family or configuration cannot be built."""


class StoreError(MinarchError):
    """The run store cannot be opened, reached or written."""


class WeightsError(MinarchError):
    """A trained run's weights file is missing, unreadable or not the file the store recorded.

    Only what starts from those weights fails (derived runs, evaluations);
    the message says how to train the run again.
    """


class QuantError(MinarchError):
    """A quantization scheme is invalid or a model cannot be quantized as asked."""


class PruneError(MinarchError):
    """A model cannot be pruned as asked (unsupported family, unreachable target)."""


class TrainError(MinarchError, ValueError):
    """A recipe, member or engine that cannot be trained as given."""


class BenchError(MinarchError, ValueError):
    """A benchmark workload or device that cannot be run as asked."""


class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM; ``remaining`` runs resume on the next run."""

    def __init__(self, signum: int = signal.SIGINT, remaining: int | None = None):
        super().__init__(signum, remaining)
        self.signum, self.remaining = signum, remaining

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + int(self.signum)
