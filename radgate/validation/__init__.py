"""Local validation: cases in, the validation summary, silent-trial verdicts and the go-live report out."""

from radgate.validation.cases import CaseFlow, CaseRecord, CaseSet, CaseTableError, read_cases_csv
from radgate.validation.criteria import AcceptanceCriteria, CriteriaError, Verdict, evaluate_criteria
from radgate.validation.metrics import DEFAULT_THRESHOLD, validate_cases, validate_table
from radgate.validation.plan import deployment_plan

__all__ = [
    "DEFAULT_THRESHOLD",
    "AcceptanceCriteria",
    "CaseFlow",
    "CaseRecord",
    "CaseSet",
    "CaseTableError",
    "CriteriaError",
    "Verdict",
    "deployment_plan",
    "evaluate_criteria",
    "read_cases_csv",
    "validate_cases",
    "validate_table",
]
