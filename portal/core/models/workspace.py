"""The partner workspace: the indexes its lists need."""

from __future__ import annotations

from sqlalchemy import Index

from portal.core.models.leads import Lead

# The inbox, the managers' lead search and the compliance gate filter on these columns;
# at a million leads each filter needs its own index (ordered by age where lists sort so).
Index("ix_leads_owner_partner", Lead.owner_partner_id)
Index("ix_leads_status_accepted", Lead.status, Lead.accepted_at)
Index("ix_leads_product_line_created", Lead.product_line_id, Lead.created_at)
Index("ix_leads_region_created", Lead.region, Lead.created_at)
Index("ix_leads_rank_created", Lead.rank, Lead.created_at)
# "My leads" and the per-salesperson counts: one user's leads by stage.
Index("ix_leads_assigned_user_status", Lead.assigned_user_id, Lead.status)
