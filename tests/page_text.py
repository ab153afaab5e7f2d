"""Reading an HTML page the way a person does, for tests of what admin pages say."""

import html
import re


def page_text(page: str) -> str:
    """The page's visible text: tags dropped, entities decoded, white space collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def page_title(page: str) -> str:
    """The text of the page's <title>."""
    return html.unescape(re.search(r"<title>(.*?)</title>", page, re.S).group(1)).strip()
