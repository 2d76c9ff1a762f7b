"""``rnnkit visualize``: self-contained HTML pages of what a model's units, gates and attention do."""
from .attention import attention_page
from .charpage import character_page, page_data
from .command import add_arguments, run

__all__ = ["attention_page", "character_page", "page_data", "add_arguments", "run"]
