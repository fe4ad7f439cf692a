"""Every lifecycle workflow the worker runs."""

from workflows.follow_up import FollowUpReminderWorkflow
from workflows.lead import LeadWorkflow

ALL_WORKFLOWS = [FollowUpReminderWorkflow, LeadWorkflow]
