-- Product image ids are never reused. Without AUTOINCREMENT SQLite hands a deleted row's id to
-- the next photo when the deleted one had the highest id, so a staff "remove photo" sent again
-- (its answer lost on the way) removed the photo enrolled after it. The embeddings, which
-- reference the images, are set aside while the table is rebuilt: dropping it would cascade.

CREATE TABLE product_images_rebuilt (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    sku      TEXT NOT NULL REFERENCES products (sku) ON DELETE CASCADE,
    path     TEXT NOT NULL,                 -- relative to the images folder
    kind     TEXT NOT NULL CHECK (kind IN ('iconic', 'reference')),
    sha256   TEXT NOT NULL,
    added_at REAL NOT NULL,
    UNIQUE (sku, sha256)
);
INSERT INTO product_images_rebuilt (id, sku, path, kind, sha256, added_at)
    SELECT id, sku, path, kind, sha256, added_at FROM product_images;
CREATE TEMP TABLE embeddings_kept AS SELECT * FROM product_embeddings;
DROP TABLE product_embeddings;
DROP TABLE product_images;
ALTER TABLE product_images_rebuilt RENAME TO product_images;

CREATE TABLE product_embeddings (
    image_id  INTEGER NOT NULL REFERENCES product_images (id) ON DELETE CASCADE,
    model_sha TEXT NOT NULL,                -- sha256 of the ONNX file that produced the vector
    dim       INTEGER NOT NULL CHECK (dim > 0),
    vector    BLOB NOT NULL,                -- float32 little-endian, unit length
    PRIMARY KEY (image_id, model_sha)
);
CREATE INDEX product_embeddings_model ON product_embeddings (model_sha);
INSERT INTO product_embeddings SELECT image_id, model_sha, dim, vector FROM embeddings_kept;
DROP TABLE embeddings_kept;
