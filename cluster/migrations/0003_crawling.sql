-- Crawling in depth: per-source options, WebSub state, full content and paywall flags.
ALTER TABLE sources
    ADD COLUMN fetch_full_content boolean NOT NULL DEFAULT true,
    -- Site sources (no feed): start URLs, link pattern, CSS selectors; see actors.site_scraper.SiteConfig.
    ADD COLUMN scrape_config jsonb,
    ADD COLUMN hub_url text,
    ADD COLUMN websub_topic text,
    ADD COLUMN websub_secret text,
    ADD COLUMN websub_lease_until timestamptz,
    ADD COLUMN moved_from text;

ALTER TABLE articles
    ADD COLUMN content_text text,
    ADD COLUMN paywalled boolean NOT NULL DEFAULT false,
    ADD COLUMN full_content_at timestamptz;

-- WebSub callbacks find their source by topic.
CREATE INDEX sources_websub_topic_idx ON sources (websub_topic) WHERE websub_topic IS NOT NULL;
