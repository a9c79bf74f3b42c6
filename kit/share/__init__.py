"""Runs shared on a git-based wiki (GitHub, GitLab, Gitea, Azure DevOps wikis are git
repositories of Markdown pages): ``python -m kit share RUN_FOLDER... --git-wiki CLONE``.

pages (a run's page name, its report.md with figure and child links rewritten), index (the
wiki's list of shared runs, updated row by row), gitrepo (git through subprocess: checks,
commit, push) and command (the subcommand). Run folders are only read. docs/sharing.md
says what lands where.
"""
