"""The hub's aiohttp web app: kiosk and staff pages, the JSON API and ops endpoints."""
