"""Flag spelling shared by the subcommands.

tfmask's flags are hyphenated (``--export-dir``). Where the OD API's scripts
(``model_main_tf2.py``, ``exporter_main_v2.py``) spell a flag with underscores,
that spelling stays accepted as an alias, so a tutorial's command line runs as
written. The hyphenated name comes first: it is the one help and errors show.
"""

from __future__ import annotations

import argparse


def od_api_flag(parser, od_api_name: str, *aliases: str, **kwargs) -> argparse.Action:
    """Adds ``--od-api-name`` with ``--od_api_name`` (and ``aliases``) accepted too.

    ``od_api_name`` is the OD API's spelling without dashes (``output_directory``);
    the option's ``dest`` is that name unless ``kwargs`` give another.
    """
    kwargs.setdefault("dest", od_api_name)
    names = [f"--{od_api_name.replace('_', '-')}", f"--{od_api_name}", *aliases]
    return parser.add_argument(*dict.fromkeys(names), **kwargs)
