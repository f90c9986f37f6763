from .items import ApprovalPolicyStep, CatalogueItem, Category, FormField, FormRule
from .organisation import CostCentre, Department, Employee

__all__ = [
    "ApprovalPolicyStep",
    "CatalogueItem",
    "Category",
    "CostCentre",
    "Department",
    "Employee",
    "FormField",
    "FormRule",
]
