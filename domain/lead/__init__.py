"""Leads: unqualified enquiries, from capture through first contact to conversion."""
