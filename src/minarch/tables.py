"""The analysis tables ``minarch analyze --table`` prints, named here so ``--help`` stays fast."""

TABLES = {
    "minimal": "P_min / P_over per dataset and family (A.2)",
    "architectures": "the regime of every architecture (A.1)",
    "runs": "every run's regime and the rule that decided it (A.1)",
    "redundancy": "pruning redundancy R_delta per model, method and pipeline (A.3)",
    "phases": "plateau / degradation / collapse boundaries of each pruning curve (A.3)",
    "min-bits": "the fewest bits with an accuracy drop <= delta per model (A.4)",
    "int8": "real int8 against fp32: accuracy, file size, CPU latency (A.4)",
    "ellipses": "ROI confidence ellipses per pruning variant, thesis Table 4.1 (B.6)",
    "risk": "performance risk of reusing unpruned hyperparameters, Table 4.2 (B.7)",
    "claims": "the paper's claims (a)-(e) tested on the study's runs, with verdicts (A.5)",
}
