"""mkdocs hook of the public site: the work is in builder.site.hook (typed, tested); this file hands it over, and
plugs in the command-line reference (the site package itself never imports the CLI)."""

from builder.cli.reference import cli_markdown
from builder.site.hook import (  # noqa: F401  (mkdocs looks the events up by name)
    on_config,
    on_env,
    on_files,
    on_nav,
    on_page_content,
    on_page_markdown,
    on_post_build,
    register_block,
)

register_block("cli", cli_markdown)
