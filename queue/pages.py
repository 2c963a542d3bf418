"""The hall's web pages: displays, staff console, follow-a-ticket page, an application's
progress (the receipt's QR code), dashboard.

Plain HTML, CSS and JavaScript files in queue/web/, served as they are: no build step and
no CDN (a hall network often has no internet). The pages talk to the JSON API and the
event stream like any other client.
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB = Path(__file__).parent / "web"

# path -> page file; the pages read their parameters (window, ticket id) from the URL.
PAGES = {
    "/display/hall": "hall.html",
    "/display/window/{window}": "window.html",
    "/window/{window}": "console.html",
    "/t/{ticket_id}": "follow.html",
    "/a/{number}": "application.html",
    "/admin": "admin.html",
    "/rate/window/{window}": "rate.html",  # the window's rating device (评价器), #18
    "/complain": "complaint.html",  # 效能投诉 from a phone, #18
    "/c/{number}": "complaint.html",  # a complaint's progress (#code= from the slip)
}


def install_pages(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=WEB), name="static")
    for path, file in PAGES.items():
        app.add_api_route(path, _page(WEB / file), methods=["GET"], include_in_schema=False)


def _page(file: Path):
    async def page() -> FileResponse:
        # Pages change with releases, not with data: let browsers revalidate each load.
        return FileResponse(file, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})
    return page
