# Regenerates the sample portfolio inputs (readings.csv, surveys.csv, issues.csv); run from the repo root.
import csv
import random
from datetime import date, timedelta

random.seed(7)
accounts = [r["external_id"] for r in csv.DictReader(open("examples/accounts.csv"))]
today = date(2026, 11, 24)
# profile per account: (usage trend start->end, nps mean, csat mean, tickets, otd)
profiles = {
 "ACME": (88, 55, 9, 4.5, 2, 95), "GLOBEX": (85, 82, 8, 4.2, 4, 90), "INITECH": (70, 30, 4, 2.5, 12, 60),
 "UMBRELLA": (60, 62, 7, 3.8, 6, 85), "HOOLI": (92, 93, 9, 4.8, 1, 98), "STARK": (50, 45, 6, 3.2, 9, 70),
 "WAYNE": (75, 74, 8, 4.0, 5, 88), "SOYLENT": (40, 20, 3, 2.0, 15, 50), "VANDELAY": (82, 80, 8, 4.1, 3, 92),
 "TYRELL": (95, 90, 9, 4.7, 2, 97), "CYBERDYNE": (65, 35, 5, 2.8, 11, 65), "WONKA": (55, 58, 7, 3.5, 6, 80),
}
with open("examples/readings.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(["account", "kpi", "value", "observed_at", "source"])
    for acc in accounts:
        u0, u1, nps, csat, tickets, otd = profiles[acc]
        for week in range(12, -1, -1):
            day = today - timedelta(days=7 * week)
            if acc == "STARK" and week < 2:  # usage feed stopped two weeks ago: stale
                continue
            usage = u1 + (u0 - u1) * week / 12 + random.uniform(-3, 3)
            if acc == "ACME" and week < 3:  # adoption collapsed after the SSO outage
                usage -= 60 - 12 * week
            w.writerow([acc, "usage", round(max(0, min(100, usage)), 1), f"{day}T06:00:00", "product-analytics"])
            if acc != "WONKA":  # delivery data missing for WONKA
                w.writerow([acc, "on_time_delivery", round(otd + random.uniform(-5, 5), 1), f"{day}T06:00:00", "pmo"])
            w.writerow([acc, "open_tickets", max(0, tickets + random.randint(-2, 2)), f"{day}T06:00:00", "helpdesk"])
    # a duplicate: two different usage values at the same time from two sources
    w.writerow(["UMBRELLA", "usage", 20.0, f"{today}T06:00:00", "legacy-export"])
with open("examples/surveys.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(["account", "kind", "score", "max_score", "responded_at"])
    for acc in accounts:
        _, _, nps, csat, _, _ = profiles[acc]
        for i in range(6):
            day = today - timedelta(days=10 + 12 * i)
            w.writerow([acc, "nps", max(0, min(10, round(nps + random.uniform(-2.5, 2.5)))), 10, f"{day}T12:00:00"])
            w.writerow([acc, "csat", max(1, min(5, round(csat + random.uniform(-1, 1)))), 5, f"{day}T12:00:00"])
with open("examples/issues.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(["external_id", "account", "kind", "severity", "status", "opened_at", "closed_at", "title"])
    rows = [
      ("CS-1042", "ACME", "complaint", "high", "open", "2026-11-02", "", "Report exports time out"),
      ("CS-1077", "ACME", "complaint", "medium", "open", "2026-11-09", "", "SSO outage on Monday"),
      ("CS-1101", "INITECH", "complaint", "high", "open", "2026-11-15", "", "Invoices wrong twice"),
      ("BL-201", "INITECH", "billing", "medium", "open", "2026-11-16", "", "Disputed invoice"),
      ("BK-31", "SOYLENT", "blocker", "critical", "open", "2026-11-01", "", "Integration blocked by API limits"),
      ("TK-9001", "SOYLENT", "ticket", "high", "open", "2026-11-10", "", "Data sync failures"),
      ("TK-9002", "SOYLENT", "ticket", "critical", "open", "2026-11-12", "", "Dashboard down"),
      ("TK-9003", "SOYLENT", "ticket", "high", "open", "2026-11-20", "", "Missing records"),
      ("TK-9010", "CYBERDYNE", "ticket", "high", "open", "2026-11-18", "", "Slow reports"),
      ("CS-0990", "GLOBEX", "complaint", "low", "closed", "2026-09-01", "2026-09-05", "Typo in UI"),
    ]
    for r in rows: w.writerow(r)
