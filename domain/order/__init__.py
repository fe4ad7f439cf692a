"""Orders: booked in the ERP once a contract is signed; shipment, invoice and payments follow."""

from domain.order.models import (
    ErpEventRecord,
    Instalment,
    InstalmentStatus,
    Order,
    OrderStatus,
    Payment,
)

__all__ = ["ErpEventRecord", "Instalment", "InstalmentStatus", "Order", "OrderStatus", "Payment"]
