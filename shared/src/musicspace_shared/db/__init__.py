"""Database: tables, async engine and sessions, dialect-aware helpers."""
