"""All configuration, read once from DOSSIER_* environment variables (or a .env file)."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOSSIER_", env_file=".env", extra="ignore")

    var_dir: Path = Path("var")
    database_url: str = "sqlite+aiosqlite:///var/dossier.db"

    temporal_address: str | None = None
    """A running Temporal server (host:port); unset, `dossier run` starts the dev server."""
    temporal_namespace: str = "default"
    temporal_task_queue: str = "dossier"
    temporal_id_prefix: str = ""
    """Prefix of workflow ids, for several Dossier installs (or test runs) on one namespace."""
    temporal_dev_port: int = 7233
    temporal_ui_port: int = 8233

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""
    """Address people reach the pages at, for links in mail; default http://host:port."""

    secret_key: SecretStr | None = None
    """Signs tokens and cookies. Unset: generated once and kept in var/secret_key."""
    token_ttl_minutes: int = 12 * 60
    cookie_secure: bool = False
    """Set behind HTTPS so the session cookie is never sent in clear."""

    admin_username: str | None = None
    admin_password: SecretStr | None = None

    default_region: str = "CN"
    default_currency: str = "CNY"
    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh-CN"

    lead_fuzzy_threshold: float = 90.0
    """rapidfuzz similarity (0-100) of folded company names that counts as the same company."""
    merge_undo_days: int = 30
    """How long a merge of duplicate customers can still be undone."""

    max_body_bytes: int = 2_000_000
    import_max_bytes: int = 50_000_000
    """Largest spreadsheet an import accepts (its upload route has this body limit)."""
    import_max_unpacked_bytes: int = 500_000_000
    """An .xlsx is a zip: refuse one whose contents expand beyond this (a zip bomb)."""
    import_max_rows: int = 200_000
    import_chunk_rows: int = 1_000
    """Rows written per transaction; progress and the resume point move by this much."""
    page_size_max: int = 200

    smtp_host: str | None = None
    """Mail relay for notifications; unset, email is skipped and only in-app and chat go out."""
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    """Upgrade a plain connection with STARTTLS (port 587 relays)."""
    smtp_use_tls: bool = False
    """Speak TLS from the first byte (port 465 relays)."""
    mail_from: str = "Dossier <noreply@localhost>"
    smtp_timeout: float = 10
    robot_timeout: float = 10
    """Seconds a chat robot webhook (WeCom, DingTalk, Feishu) may take to answer."""

    erp_url: str | None = None
    """Base address of the ERP (orders, invoices, customers); unset, orders are not sent out and
    only their payment plans run."""
    erp_secret: SecretStr | None = None
    """HMAC key shared with the ERP, for requests both ways; unset, the signing key is used."""
    erp_timeout: float = 10
    """Seconds one ERP request may take before it is retried."""

    support_address: str = "support@localhost"
    """Mail to this address opens tickets; public replies and surveys are sent from it."""
    mail_in_host: str = "127.0.0.1"
    mail_in_port: int = 2525
    """The inbound SMTP endpoint of `dossier mail-in` (started by `dossier run`)."""
    ticket_default_type: str = "consultation"
    """The type of a ticket that arrives by mail (a mail says nothing of its type)."""
    attachment_max_bytes: int = 1_000_000
    """Largest attachment; keep below max_body_bytes, which bounds every request body."""
    attachment_types: tuple[str, ...] = (
        "image/png",
        "image/jpeg",
        "image/gif",
        "application/pdf",
        "text/plain",
    )
    """Content types accepted as sniffed from the bytes (the client's claim is ignored)."""

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_dev_port}"

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def workflow_id(self, concept: str, entity_id: int) -> str:
        """`lead-42`: one workflow per entity, found again from the entity alone."""
        return f"{self.temporal_id_prefix}{concept}-{entity_id}"

    def signing_key(self) -> str:
        """The configured secret, or one generated on first use and kept under var/."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.var_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    def erp_signing_secret(self) -> str:
        """The key ERP requests and events are signed with (see docs/erp.md)."""
        if self.erp_secret is not None:
            return self.erp_secret.get_secret_value()
        return self.signing_key()


settings = Settings()
