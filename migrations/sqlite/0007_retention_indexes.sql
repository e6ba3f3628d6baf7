-- Retention works in small batches found through indexes, never by scanning whole tables
-- while it holds the writer: inbox rows and events by age.
CREATE INDEX inbox_received_at ON inbox (received_at);
CREATE INDEX events_received_at ON events (received_at);
