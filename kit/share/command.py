"""``python -m kit share RUN_FOLDER... --git-wiki CLONE``: runs as pages of a git-based wiki
(``--confluence URL --space KEY`` instead: as Confluence pages, kit.share.confluence;
``--mediawiki URL``: as MediaWiki pages, kit.share.mediawiki).

Every check comes before anything is written: the clone is a git work tree with git's name
and email set and no uncommitted change in ``vlm-kit/``, every folder is a run with a
report.md. Then the pages, their figures and ``vlm-kit/index.md`` are written, committed
(nothing is committed when nothing changed) and pushed when the clone has a remote. Exit
status: 0 shared; 2 refused (one paragraph, nothing written); 1 a git step failed after
writing (a failed push keeps its commit).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kit.core.params import ParameterError
from kit.share import confluence, gitrepo, mediawiki
from kit.share.pages import KIT_FOLDER, Page, plan_page
from kit.share.wiki import write_index, write_page

DESCRIPTION = (
    "Put runs on a wiki, each run's report.md as a page with its figures (a reproduce run's "
    "children as its sub pages): a git-based wiki's clone (--git-wiki PATH), Confluence "
    "(--confluence URL --space KEY) or MediaWiki (--mediawiki URL; a bot password's user and "
    "password in MEDIAWIKI_USER and MEDIAWIKI_PASSWORD). A git wiki and MediaWiki also get "
    "an index page of the runs shared. Sharing again updates the pages; run folders are only "
    "read. docs/sharing.md says what lands where."
)
# the options that belong to one target, and that target's option
TARGET_OPTIONS = {
    "space": "--confluence",
    "confluence_user_env": "--confluence",
    "confluence_token_env": "--confluence",
    "mediawiki_user_env": "--mediawiki",
    "mediawiki_password_env": "--mediawiki",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_FOLDER")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--git-wiki",
        type=Path,
        metavar="PATH",
        help="a local clone of the wiki (a git work tree); pages go into its vlm-kit/ folder",
    )
    where.add_argument(
        "--confluence",
        metavar="URL",
        help="a Confluence (Server / Data Center) site's address; pages go into --space",
    )
    where.add_argument(
        "--mediawiki",
        metavar="URL",
        help="a MediaWiki's address: the folder its api.php is in (e.g. https://host/w)",
    )
    parser.add_argument("--no-push", action="store_true", help="commit, but do not push")
    parser.add_argument("--space", metavar="KEY", help="with --confluence: the space's key")
    parser.add_argument(
        "--confluence-user-env",
        metavar="NAME",
        help="the environment variable holding the Confluence user (default CONFLUENCE_USER; "
        "unset: the token is sent as a bearer token)",
    )
    parser.add_argument(
        "--confluence-token-env",
        metavar="NAME",
        help="the environment variable holding the API token (default CONFLUENCE_TOKEN)",
    )
    parser.add_argument(
        "--mediawiki-user-env",
        metavar="NAME",
        help="the environment variable holding the MediaWiki user, a bot password's "
        "Name@appid (default MEDIAWIKI_USER)",
    )
    parser.add_argument(
        "--mediawiki-password-env",
        metavar="NAME",
        help="the environment variable holding its password (default MEDIAWIKI_PASSWORD)",
    )


def plan(runs: list[Path]) -> list[Page]:
    """One page per distinct run folder; refuses two runs that would share a page."""
    pages: dict[str, Page] = {}
    seen: set[Path] = set()
    for folder in runs:
        if folder.resolve() in seen:
            continue
        seen.add(folder.resolve())
        page = plan_page(folder)
        other = pages.get(page.name)
        if other is not None:
            raise ParameterError(
                f"RUN_FOLDER {str(folder)!r} and {str(other.folder)!r} would both be page "
                f"{page.path}: share them one at a time, or rename one of the folders."
            )
        pages[page.name] = page
    return list(pages.values())


def commit_message(pages: list[Page]) -> str:
    names = ", ".join(page.name for page in pages)
    head = f"vlm-kit: share {names}" if len(pages) <= 3 else f"vlm-kit: share {len(pages)} runs"
    body = "\n".join(f"- {page.name}: run folder {page.folder.name}" for page in pages)
    return f"{head}\n\n{body}\n"


def check_options(args: argparse.Namespace, chosen: str) -> None:
    """No option of another target (it would be ignored)."""
    for name, target in TARGET_OPTIONS.items():
        if getattr(args, name, None) is not None and target != chosen:
            option = "--" + name.replace("_", "-")
            raise ParameterError(f"{option} goes with {target} URL, not with {chosen}.")


def share_main(args: argparse.Namespace) -> int:
    if args.confluence is not None:
        check_options(args, "--confluence")
        site = confluence.target_from(
            args.confluence, args.space, args.confluence_user_env, args.confluence_token_env
        )
        return confluence.share_confluence(site, plan(list(args.runs)))
    if args.mediawiki is not None:
        check_options(args, "--mediawiki")
        wiki = mediawiki.target_from(
            args.mediawiki, args.mediawiki_user_env, args.mediawiki_password_env
        )
        return mediawiki.share_mediawiki(wiki, plan(list(args.runs)))
    check_options(args, "--git-wiki")
    root: Path = args.git_wiki
    gitrepo.require_work_tree(root)
    pages = plan(list(args.runs))
    gitrepo.require_clean(root, KIT_FOLDER)
    gitrepo.require_identity(root)

    for page in pages:
        write_page(root, page)
        for shared in page.all_pages():
            figures = len(shared.figures)
            print(
                f"{shared.folder.name} -> {shared.path} "
                f"({figures} figure{'s' if figures != 1 else ''})"
            )
        for note in page.notes:
            print(f"note: {note}")
    print(f"index: {write_index(root, pages).relative_to(root)}")
    try:
        committed = gitrepo.commit(root, KIT_FOLDER, commit_message(pages))
        print(f"committed {committed} in {root}" if committed else "no change: nothing committed")
        target = None if args.no_push else gitrepo.push_target(root)
        if target is None:
            print("not pushed: " + ("--no-push" if args.no_push else "the clone has no remote"))
        elif gitrepo.needs_push(root, target):
            gitrepo.push(root, target)
            print(f"pushed to {target.remote} ({target.url}) {target.branch}")
        else:
            print(f"{target.remote} ({target.url}) {target.branch} is up to date")
    except gitrepo.GitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
