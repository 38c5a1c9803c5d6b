"""What the battle page adds to Gradio's own CSS and scripts: the chat columns' layout rules and
the vote shortcuts. Kept apart from the views so ``ui.py`` and ``battle_view.py`` only build
components; ``app.py`` hands both strings to ``gr.mount_gradio_app``.

The script is an inline ``<script>`` in the page head (the page's content security policy allows
inline scripts, not ``eval``, so Gradio's ``js=`` hook, which evaluates a string, is not used).
"""

from __future__ import annotations

import json

# Every chat column of a battle carries the class "arena-chat".
PAGE_CSS = """
/* A chat column's own clear (trash) button would empty one side in the browser only, while its
   model keeps answering from the whole conversation: one battle, one history, so no such button. */
.arena-chat button[aria-label="Clear"] { display: none !important; }
/* The floating "Model X" label gets its own strip: scrolled text no longer runs under it, and
   the copy buttons of the first message no longer sit on it. */
.arena-chat label[data-testid="block-label"] {
  background: var(--block-background-fill); z-index: 5;
}
.arena-chat .bubble-wrap { margin-top: 2rem; height: calc(100% - 2rem) !important; }
/* K-way battles: a grid of --arena-columns columns (K = 4: 2 x 2, K = 5 or 6: 3 across on a
   laptop), two on a narrow window, one on a phone. */
.arena-grid { display: grid !important; gap: var(--spacing-lg);
  grid-template-columns: repeat(var(--arena-columns, 2), minmax(0, 1fr)); }
.arena-grid > .arena-chat { min-width: 0 !important; }
.arena-k3 { --arena-columns: 3; } .arena-k5, .arena-k6 { --arena-columns: 3; }
@media (max-width: 1000px) { .arena-grid { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
@media (max-width: 640px) { .arena-grid { grid-template-columns: 1fr; } }
/* A phone (or a narrow window): the prompt box is in view on first load. Chats with nothing in
   them yet are a strip, answers get a little under half the screen each, the four vote buttons
   sit 2 x 2, and before the first prompt there is nothing to regenerate. */
@media (max-width: 640px) {
  .arena-chat { height: min(420px, 45vh) !important; }
  .arena-chat:has(.placeholder-content) { height: 5rem !important; }
  .arena-chats:has(.arena-chat .placeholder-content) ~ .arena-regenerate { display: none !important; }
  .arena-votes { display: grid !important; grid-template-columns: repeat(2, minmax(0, 1fr)); }
  .arena-votes > button { min-width: 0 !important; }
}
/* No keyboard to speak of on a phone or a narrow window: the shortcuts' hint is noise there. */
@media (max-width: 640px), (hover: none) and (pointer: coarse) { .arena-shortcuts { display: none !important; } }
#status:empty, #kway-status:empty, #named-status:empty { display: none; }
.arena-status { font-weight: 600; scroll-margin: 1rem 0; }
"""

# Vote shortcuts: 1 / 2 / 3 / 4 press "A is better" / "B is better" / "Tie" / "Both are bad" of the
# battle on screen, while the focus is not in a text box (typing a "1" in a prompt stays a "1").
# A shortcut presses the visible button only when it is enabled, so it can never vote earlier
# than a click could.
VOTE_SHORTCUTS = {"1": "model_a", "2": "model_b", "3": "tie", "4": "tie-bothbad"}

_SHORTCUT_SCRIPT = """
<script>
(function () {
  const shortcuts = %s;
  function typing(target) {
    if (!target) return false;
    const tag = (target.tagName || "").toLowerCase();
    return tag === "textarea" || tag === "input" || tag === "select" || target.isContentEditable;
  }
  // A refusal ("needs 4 working models", a rejected prompt) is scrolled into view: the status
  // line sits above the answers, and the voter may have scrolled down to Send.
  new MutationObserver(function (changes) {
    for (const change of changes) {
      const status = change.target.closest && change.target.closest(".arena-status");
      const element = status || (change.target.parentElement && change.target.parentElement.closest(".arena-status"));
      if (element && element.textContent.includes("\u26a0")) {
        element.scrollIntoView({block: "nearest"});
        return;
      }
    }
  }).observe(document.documentElement, {subtree: true, childList: true, characterData: true});
  // Send (a click, or Enter in a prompt box) turns its view's vote controls off at once, in the
  // page: the server's own "off" arrives a round trip later, and a vote key pressed in between
  // would meet the previous turn still votable while the follow-up is on its way.
  function sending(prefix) {
    for (const part of ["vote-", "rank-", "submit-", "regen-"]) {
      for (const button of document.querySelectorAll('button[id^="' + prefix + part + '"]')) button.disabled = true;
    }
  }
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    const box = event.target && event.target.closest && event.target.closest('textarea') &&
                event.target.closest('[id$="prompt"]');
    if (box) sending(box.id.slice(0, -"prompt".length));
  }, true);
  document.addEventListener("click", function (event) {
    const send = event.target && event.target.closest && event.target.closest('button[id$="send"]');
    if (send && !send.disabled) sending(send.id.slice(0, -"send".length));
  }, true);
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    const outcome = shortcuts[event.key];
    if (!outcome) return;
    const buttons = document.querySelectorAll('button[id$="vote-' + outcome + '"]');
    for (const button of buttons) {
      if (button.offsetParent !== null && !button.disabled) {
        event.preventDefault();
        button.click();
        return;
      }
    }
  });
})();
</script>
"""


def page_head() -> str:
    """The ``head`` HTML of the page: the vote shortcuts, refusals scrolled into view."""
    return _SHORTCUT_SCRIPT % json.dumps(VOTE_SHORTCUTS)
