"""The CLI's HTTP client of the operator API, with errors a person can act on."""

import os
from pathlib import Path
from typing import Any

import httpx

from autocloud.bootstrap import ADMIN_TOKEN_FILE
from autocloud.domain.errors import AutocloudError

DEFAULT_API = "http://127.0.0.1:8080"


class CliError(AutocloudError):
    """A failure to show the user, already worded for them."""


def _token(data_dir: Path) -> str:
    token = os.environ.get("AUTOCLOUD_TOKEN")
    if token:
        return token
    path = data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    raise CliError(
        f"no API token: set AUTOCLOUD_TOKEN, or run on the server where {path} exists "
        "(written at first start), or make one with 'autocloud tokens create'"
    )


class Api:
    def __init__(self, base_url: str | None = None, data_dir: Path | None = None) -> None:
        self.base_url = base_url or os.environ.get("AUTOCLOUD_API_URL", DEFAULT_API)
        folder = data_dir or Path(os.environ.get("AUTOCLOUD_DATA_DIR", "var"))
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {_token(folder)}"},
            timeout=30,
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise CliError(
                f"cannot reach the API at {self.base_url}; is the platform running? "
                "Start it with 'autocloud up' or set AUTOCLOUD_API_URL"
            ) from None
        if response.status_code >= 400:
            try:
                problem = response.json()
                detail = problem.get("detail") or problem.get("title")
            except ValueError:
                detail = response.text[:300]
            raise CliError(f"{response.status_code}: {detail}")
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request(
            "GET", path, params={k: v for k, v in params.items() if v is not None}
        ).json()

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body).json()

    def pages(self, path: str, **params: Any) -> Any:
        """Every item of a paginated list, following `next` cursors."""
        cursor = None
        while True:
            page = self.get(path, cursor=cursor, **params)
            yield from page["items"]
            cursor = page.get("next")
            if not cursor:
                return
