"""Redis key names and pub/sub channels, in one place so every process agrees on them."""

PREFIX = "newsray:"
# Published with the JSON list of new article ids after every crawl that stored some.
CHANNEL_NEW_ARTICLES = f"{PREFIX}articles:new"
