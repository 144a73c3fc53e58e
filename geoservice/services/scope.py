"""What an account may see and manage, decided once for every service and route.

An ``admin`` (the city federation's staff) manages everything. A ``district_admin`` manages the sites whose
``district_adcode`` is one of its districts (plus any assigned to it), the reports, live status, history and changes
of those sites, and the operator accounts of its districts (created there, or holding a site there). An
``operator`` manages only its assigned sites and itself. The site part is one SQL fragment (``scoped_sites`` in
``store/sql/common/queries.sql``, bound by :func:`geoservice.store.relational.scope_params`) that every scoped
listing uses; this module adds the checks on single objects.

Answers: a site, report or account that does not exist is a 404; one that exists but is outside the account's
scope is a 403 (the same for every route); a route for managers called by an operator is a 403.
"""
from __future__ import annotations

import dataclasses

from geoservice.errors import Forbidden, NotFound
from geoservice.model import Operator, Site
from geoservice.store.relational import Accounts


@dataclasses.dataclass(frozen=True)
class Scope:
    """One account's scope over one store's accounts repository."""

    operator: Operator
    accounts: Accounts

    def require_manager(self) -> None:
        """Admin and district-admin routes: 403 for an operator."""
        if not self.operator.is_manager:
            raise Forbidden("only union staff (admin or district_admin accounts) may do this / 仅工会管理员可操作")

    def require_admin(self) -> None:
        """City-wide actions (creating district admins and admins)."""
        if not self.operator.is_admin:
            raise Forbidden("only the city federation's staff (admin accounts) may do this / 仅市总工会管理员可操作")

    def site(self, site: Site | None, site_id: str) -> Site:
        """The site if in scope: 404 when there is none, 403 when it is outside the scope."""
        if site is None:
            raise NotFound(f"no site with id {site_id[:64]!r}")
        if self.operator.token_site is not None and self.operator.token_site != site.id:
            raise Forbidden(f"this token is limited to site {self.operator.token_site}")
        if not self.accounts.owned_site_ids(self.operator, [site.id]):
            raise Forbidden(f"site {site.id} is not in your scope / 该站点不在您的管理范围内")
        return site

    def site_ids(self, site_ids: list[str]) -> set[str]:
        """Which of these site ids exist and are in scope."""
        return self.accounts.owned_site_ids(self.operator, site_ids)

    def district(self, adcode: str | None) -> str | None:
        """A district filter or target: a district admin's must be one of its districts (403 otherwise)."""
        if adcode is not None and self.operator.role == "district_admin" and adcode not in self.operator.districts:
            raise Forbidden(f"district {adcode} is not one of yours / 该区不在您的管理范围内")
        return adcode

    def account(self, found: Operator | None, what: str) -> Operator:
        """An account if in scope: 404 when there is none, 403 when a manager may not manage it (a district
        admin manages only its districts' operator accounts; nobody manages itself through the admin API)."""
        if found is None:
            raise NotFound(f"no account {what[:64]!r}")
        self.require_manager()
        if self.operator.is_admin and found.id != self.operator.id:
            return found
        if found.id != self.operator.id and any(a.id == found.id for a in self.accounts.scoped(self.operator)):
            return found
        raise Forbidden(f"account {what[:64]!r} is not in your scope / 该账号不在您的管理范围内")

    def accounts_in_scope(self) -> list[Operator]:
        """The accounts a manager sees (403 for an operator)."""
        self.require_manager()
        return self.accounts.scoped(self.operator)
