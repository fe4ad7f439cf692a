"""Business concepts of Dossier: tables, schemas and service functions. No web, no Temporal."""
