from .items import ApprovalPolicyStep, CatalogueItem, Category, FormField
from .organisation import CostCentre, Department, Employee

__all__ = [
    "ApprovalPolicyStep",
    "CatalogueItem",
    "Category",
    "CostCentre",
    "Department",
    "Employee",
    "FormField",
]
