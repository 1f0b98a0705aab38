"""The HTML pages, one router per noun."""

from __future__ import annotations

from fastapi import APIRouter

from pulsecheck.web.pages import accounts, cycles, escalations, inbox, portfolio, reviews

ROUTERS: list[APIRouter] = [inbox.router, reviews.router, accounts.router, escalations.router, cycles.router,
                            portfolio.router]
