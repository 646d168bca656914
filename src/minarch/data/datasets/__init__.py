"""The built-in datasets, one module each: its ``DatasetInfo``, files and loader.

Every module here is imported when a registry is first asked for a name, so a
module must not import torch at its top: a loader imports what it needs when
it runs, and reading a store or a study needs only the infos.
"""
