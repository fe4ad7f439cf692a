"""Every lifecycle workflow the worker runs."""

from workflows.approval import ApprovalWorkflow
from workflows.deal import DealWorkflow
from workflows.erp import ErpCustomerSyncWorkflow
from workflows.follow_up import FollowUpReminderWorkflow
from workflows.imports import ImportWorkflow
from workflows.lead import LeadWorkflow
from workflows.order import OrderWorkflow
from workflows.ticket import TicketWorkflow

ALL_WORKFLOWS = [
    ApprovalWorkflow,
    DealWorkflow,
    ErpCustomerSyncWorkflow,
    FollowUpReminderWorkflow,
    ImportWorkflow,
    LeadWorkflow,
    OrderWorkflow,
    TicketWorkflow,
]
