"""Runs shared on a wiki: ``python -m kit share RUN_FOLDER...`` with ``--git-wiki CLONE``
(GitHub, GitLab, Gitea, Azure DevOps wikis are git repositories of Markdown pages),
``--confluence URL --space KEY`` or ``--mediawiki URL``.

pages (a run's page name, its report.md with figure and child links rewritten), index (the
list of shared runs, updated row by row), wiki and gitrepo (a git wiki: files, commit,
push), confluence* and mediawiki* (each: the format, the API, the command's steps), markup
and remote (what those two share: report.md to HTML and its walk; the URL and credential
checks), command (the subcommand). Run folders are only read. docs/sharing.md says what
lands where.
"""
