"""HTTP interface: thin routes over domain services and workflows, plus the pages."""
