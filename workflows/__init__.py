"""Every lifecycle workflow the worker runs."""

from workflows.follow_up import FollowUpReminderWorkflow

ALL_WORKFLOWS = [FollowUpReminderWorkflow]
