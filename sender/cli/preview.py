"""`campaign preview`: see one email as a supporter will, or check every variant."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from sender.campaign.cases import case_by_slug
from sender.cli.common import CampaignOption, console, open_database
from sender.core import db
from sender.core.addresses import normalise_email
from sender.core.config import Settings, get_settings
from sender.core.errors import CampaignError, InvalidInput, NotFound
from sender.core.models import Campaign, Supporter
from sender.core.vocabulary import WaveKind
from sender.render.identity import sender_identity
from sender.render.preview import Preview, check_all, preview, screenshot
from sender.render.renderer import CaseContent, RecipientData, Renderer

HELP = "Render one case email as a supporter sees it, or check every variant with --all."


def preview_command(
    case: Annotated[str | None, typer.Option("--case", help="Case slug.")] = None,
    lang: Annotated[str, typer.Option("--lang", help="Language code (en, es, fr, ar).")] = "en",
    kind: Annotated[WaveKind, typer.Option("--kind", help="Which email.")] = WaveKind.CASE_EMAIL,
    supporter: Annotated[
        str | None, typer.Option("--supporter", help="Personalise for this supporter's email.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the files.")] = Path("preview"),
    png: Annotated[bool, typer.Option("--png", help="Also save a Chromium screenshot.")] = False,
    check_every: Annotated[
        bool, typer.Option("--all", help="Render every variant; non-zero exit on any error.")
    ] = False,
    templates_dir: Annotated[
        Path | None, typer.Option("--templates-dir", help="Use templates from this folder.")
    ] = None,
    campaign: CampaignOption = None,
) -> None:
    settings = get_settings()
    if templates_dir is not None:
        settings = settings.model_copy(update={"templates_dir": templates_dir})
    try:
        if check_every:
            _check_every(settings)
            return
        if case is None:
            raise InvalidInput("give --case SLUG (or --all)")
        result = _preview_one(settings, case, lang, kind, supporter, campaign)
        _write(result, out / f"{case}-{lang}-{kind.value}", png)
    except CampaignError as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(2) from error


def _check_every(settings: Settings) -> None:
    problems = check_all(open_database(settings), settings)
    for problem in problems:
        console.print(f"[red]problem:[/] {problem}")
    if problems:
        console.print(f"[bold red]{len(problems)} problem(s): refusing[/]")
        raise typer.Exit(1)
    console.print("every variant renders")


def _preview_one(
    settings: Settings,
    slug: str,
    language: str,
    kind: WaveKind,
    email: str | None,
    campaign: str | None,
) -> Preview:
    engine = open_database(settings)
    with db.session_scope(engine) as session:
        row = case_by_slug(session, slug, campaign)
        content = CaseContent.from_row(row)
        identity = sender_identity(settings, session.get(Campaign, row.campaign_id))
        who = None
        if email is not None:
            address = normalise_email(email)
            person = session.scalar(select(Supporter).where(Supporter.email == address))
            if person is None or person.email is None:
                raise NotFound(f"no supporter with email {email!r}")
            who = RecipientData(
                person.id, person.email, person.first_name, person.last_name, None, row.id, None
            )
    return preview(Renderer(settings, identity), kind, content, language, who)


def _write(result: Preview, stem: Path, png: bool) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    html_file = stem.with_suffix(".html")
    html_file.write_text(result.html, encoding="utf-8")
    stem.with_suffix(".txt").write_text(result.text, encoding="utf-8")
    stem.with_suffix(".eml").write_bytes(result.eml)
    console.print(f"subject:   {result.subject}")
    console.print(f"preheader: {result.preheader}")
    console.print(
        f"size:      HTML {result.html_bytes / 1024:.1f} KB, MIME {len(result.eml) / 1024:.1f} KB"
    )
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if png:
        console.print(f"png:       {screenshot(html_file, stem.with_suffix('.png'))}")
    console.print(f"wrote {html_file}, .txt and .eml")
