"""Every lifecycle workflow the worker runs."""

from workflows.approval import ApprovalWorkflow
from workflows.deal import DealWorkflow
from workflows.erp import ErpCustomerSyncWorkflow
from workflows.follow_up import FollowUpReminderWorkflow
from workflows.lead import LeadWorkflow
from workflows.order import OrderWorkflow

ALL_WORKFLOWS = [
    ApprovalWorkflow,
    DealWorkflow,
    ErpCustomerSyncWorkflow,
    FollowUpReminderWorkflow,
    LeadWorkflow,
    OrderWorkflow,
]
