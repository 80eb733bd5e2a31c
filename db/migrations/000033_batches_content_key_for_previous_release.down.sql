DROP TRIGGER batches_fill_content_key ON batches;
DROP FUNCTION batches_fill_content_key();
