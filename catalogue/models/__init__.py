from .bundles import Bundle, BundleItem
from .items import ApprovalPolicyStep, CatalogueItem, Category, FormField, FormRule
from .organisation import CostCentre, Department, Employee

__all__ = [
    "ApprovalPolicyStep",
    "Bundle",
    "BundleItem",
    "CatalogueItem",
    "Category",
    "CostCentre",
    "Department",
    "Employee",
    "FormField",
    "FormRule",
]
