"""Cleaning: what a reader of the cleaned text would see."""

from __future__ import annotations

import time

from answerdesk.ingest.cleaning import (
    html_to_sections,
    markdown_to_sections,
    normalize_text,
    plain_to_sections,
)
from answerdesk.types import Section

HELP_PAGE = """<!doctype html>
<html><head><title>Refund policy | Acme Help</title><script>track("pageview")</script>
<style>.x { color: red }</style></head>
<body class="page has-sidebar">
<header class="site-header"><a href="/">Acme</a> <a href="/pricing">Pricing</a></header>
<nav><ul><li><a href="/">Home</a></li><li><a href="/docs">All docs</a></li></ul></nav>
<div id="cookie-banner" role="dialog">We use cookies to improve your experience. <button>Accept all</button></div>
<ol class="breadcrumb"><li>Help center</li><li>Billing</li></ol>
<div class="site-navigation"><a href="/status">Status page</a></div>
<div class="layout">
  <div class="sidebar-left"><a href="/a">Related article</a></div>
  <main>
    <article>
      <h1>Refunds</h1>
      <p>Refunds take <b>5 business days</b>.
         Contact   support if yours is late.</p>
      <h2>Annual plans</h2>
      <p>Annual plans are refunded pro rata.</p>
      <ul><li>Unused months</li><li>Minus <em>discounts</em><ul><li>only promotional ones</li></ul></li></ul>
      <table>
        <thead><tr><th>Plan</th><th>Refund | window</th></tr></thead>
        <tbody><tr><td>Monthly</td><td>14   days</td></tr><tr><td>Annual</td><td>30
        days</td></tr></tbody>
      </table>
      <h3>EU customers</h3>
      <p>A 14-day cooling-off period applies.<br>It is a legal right.</p>
      <h2>Contact</h2>
      <p>Write to billing@example.com.</p>
    </article>
    <aside>You may also like: shipping times</aside>
    <form><input name="q"> Search the help center</form>
  </main>
</div>
<footer>© 2024 Acme Inc. All rights reserved.</footer>
<div class="gdpr-consent">Manage your privacy preferences</div>
</body></html>
"""


def _all_text(sections: list[Section]) -> str:
    return "\n".join(s.text for s in sections)


# -- normalize_text -----------------------------------------------------------------------------------------


def test_normalize_applies_nfkc() -> None:
    assert normalize_text("ﬁnal ＡＢＣ１２３ café") == "final ABC123 café"
    assert normalize_text("50\u00a0€") == "50 €"


def test_normalize_strips_zero_width_bidi_and_control_characters() -> None:
    text = "pass\u200bword \ufeffre\u200dset \u202eevil\u202c bell\x07 soft\u00adhyphen"
    assert normalize_text(text) == "password reset evil bell softhyphen"


def test_normalize_tidies_whitespace_and_line_endings() -> None:
    text = "line one  \r\nline\t\ttwo   words\r\rafter\n\n\n\n\nlast   \n"
    assert normalize_text(text) == "line one\nline two words\n\nafter\n\nlast"


def test_normalize_keeps_leading_indentation_for_nested_lists() -> None:
    assert normalize_text("- a\n  - b   c") == "- a\n  - b c"


def test_plain_text_is_one_section_with_no_heading() -> None:
    assert plain_to_sections("Hello\r\n\r\n\r\nworld") == [Section((), "Hello\n\nworld")]
    assert plain_to_sections(" \u200b \n\n") == []


# -- HTML ---------------------------------------------------------------------------------------------------


def test_html_drops_boilerplate_and_keeps_article_text() -> None:
    _, sections = html_to_sections(HELP_PAGE, source="refunds.html")
    text = _all_text(sections)
    assert "Refunds take 5 business days. Contact support if yours is late." in text
    assert "A 14-day cooling-off period applies." in text
    for boilerplate in (
        "cookies",
        "Accept all",
        "All docs",
        "Pricing",
        "Help center",
        "Status page",
        "Related article",
        "You may also like",
        "Search the help center",
        "All rights reserved",
        "privacy preferences",
        "pageview",
        "color: red",
    ):
        assert boilerplate not in text, boilerplate


def test_html_title_comes_from_title_element() -> None:
    title, _ = html_to_sections(HELP_PAGE, source="refunds.html")
    assert title == "Refund policy | Acme Help"


def test_html_title_falls_back_to_first_h1() -> None:
    title, _ = html_to_sections("<body><h1>Reset  your\npassword</h1><p>Go to settings.</p></body>", source="x")
    assert title == "Reset your password"


def test_html_headings_give_heading_paths() -> None:
    _, sections = html_to_sections(HELP_PAGE, source="refunds.html")
    paths = [s.heading_path for s in sections]
    assert paths == [
        ("Refunds",),
        ("Refunds", "Annual plans"),
        ("Refunds", "Annual plans", "EU customers"),
        ("Refunds", "Contact"),
    ]
    assert sections[2].text == "A 14-day cooling-off period applies.\nIt is a legal right."


def test_html_table_becomes_markdown_table() -> None:
    _, sections = html_to_sections(HELP_PAGE, source="refunds.html")
    assert (
        "| Plan | Refund \\| window |\n| --- | --- |\n| Monthly | 14 days |\n| Annual | 30 days |" in sections[1].text
    )


def test_html_table_without_th_uses_first_row_as_header_and_pads_rows() -> None:
    html = "<table><tr><td>Country</td><td>VAT</td></tr><tr><td>DE</td><td>19%</td></tr><tr><td>FR</td></tr></table>"
    _, sections = html_to_sections(html, source="x")
    assert sections == [Section((), "| Country | VAT |\n| --- | --- |\n| DE | 19% |\n| FR | |")]


def test_html_lists_become_dash_lines() -> None:
    _, sections = html_to_sections(HELP_PAGE, source="refunds.html")
    assert "- Unused months\n- Minus discounts\n  - only promotional ones" in sections[1].text


def test_html_layout_table_is_read_as_text() -> None:
    html = "<body><table><tr><td><p>Step one.</p><p>Step two.</p></td></tr></table></body>"
    _, sections = html_to_sections(html, source="x")
    assert sections == [Section((), "Step one.\n\nStep two.")]


def test_html_without_main_or_article_reads_body() -> None:
    html = "<body><nav>Menu</nav><div class='content'><p>Body text.</p></div></body>"
    assert html_to_sections(html, source="x") == ("", [Section((), "Body text.")])


def test_html_with_only_whitespace_has_no_sections() -> None:
    assert html_to_sections("  \n ", source="x") == ("", [])


def test_html_site_header_dropped_but_article_header_kept() -> None:
    html = (
        "<body><header>Acme logo</header><article><header><h1>Invoices</h1></header>"
        "<p>Download them from Billing.</p></article></body>"
    )
    title, sections = html_to_sections(html, source="x")
    assert title == "Invoices"
    assert sections == [Section(("Invoices",), "Download them from Billing.")]


def test_html_100000_nested_divs_load_quickly_without_losing_text() -> None:
    depth = 100_000
    html = (
        "<html><head><title>Deep</title></head><body><main><h1>Deep page</h1>"
        + "<div>" * depth
        + "text at the bottom"
        + "</div>" * depth
        + "<p>text after the nesting</p></main></body></html>"
    )
    started = time.perf_counter()
    title, sections = html_to_sections(html, source="deep.html")
    elapsed = time.perf_counter() - started
    assert elapsed < 5
    assert title == "Deep"
    text = _all_text(sections)
    assert "text at the bottom" in text
    assert "text after the nesting" in text


# -- Markdown -----------------------------------------------------------------------------------------------

GUIDE = """Intro before any heading.

# Billing guide

Overview.

## Refunds ##

| Plan | Window |
|------|--------|
| Monthly | 14 days |

```bash
# this is a shell comment, not a heading
echo ok
```

### Annual

Pro rata.

## Invoices

Download from the portal.
"""


def test_markdown_splits_on_headings_with_paths() -> None:
    title, sections = markdown_to_sections(GUIDE)
    assert title == "Billing guide"
    assert [s.heading_path for s in sections] == [
        (),
        ("Billing guide",),
        ("Billing guide", "Refunds"),
        ("Billing guide", "Refunds", "Annual"),
        ("Billing guide", "Invoices"),
    ]
    assert sections[0].text == "Intro before any heading."
    assert sections[4].text == "Download from the portal."


def test_markdown_keeps_tables_and_ignores_hashes_in_code_fences() -> None:
    _, sections = markdown_to_sections(GUIDE)
    refunds = sections[2].text
    assert "| Plan | Window |\n|------|--------|\n| Monthly | 14 days |" in refunds
    assert "# this is a shell comment, not a heading" in refunds


def test_markdown_without_h1_has_empty_title() -> None:
    title, sections = markdown_to_sections("## Only a subheading\ntext")
    assert title == ""
    assert sections == [Section(("Only a subheading",), "text")]


def test_markdown_hash_without_space_is_not_a_heading() -> None:
    _, sections = markdown_to_sections("#hashtag is text\n####### seven is text")
    assert sections == [Section((), "#hashtag is text\n####### seven is text")]
