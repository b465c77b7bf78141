// Calls to the hub's HTTP API: JSON in and out, errors turned into ApiError with the hub's
// own message (written for a person), and an optional bearer token for staff calls.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(path, { method = "GET", json, body, type, token, signal } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (type) {
    headers["Content-Type"] = type;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "The hub cannot be reached.");
  }
  const isJson = (response.headers.get("Content-Type") || "").startsWith("application/json");
  const data = isJson ? await response.json() : null;
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || "error",
      error.message || `The hub answered ${response.status}.`);
  }
  return data;
}
