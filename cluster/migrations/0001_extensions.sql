-- pgvector for embeddings (enrichment), pgcrypto-free UUIDs come from gen_random_uuid() (core since 13).
CREATE EXTENSION IF NOT EXISTS vector;
