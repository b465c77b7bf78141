-- Photo search: one embedding per product image (iconic or enrolled reference photo) and model.
-- Keyed by the model file's sha256, so switching models never mixes vectors from two networks;
-- images without a vector for the current model are embedded again at start.

CREATE TABLE product_embeddings (
    image_id  INTEGER NOT NULL REFERENCES product_images (id) ON DELETE CASCADE,
    model_sha TEXT NOT NULL,                -- sha256 of the ONNX file that produced the vector
    dim       INTEGER NOT NULL CHECK (dim > 0),
    vector    BLOB NOT NULL,                -- float32 little-endian, unit length
    PRIMARY KEY (image_id, model_sha)
);
CREATE INDEX product_embeddings_model ON product_embeddings (model_sha);
