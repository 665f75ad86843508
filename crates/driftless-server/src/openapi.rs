//! The OpenAPI 3.1 document, generated from the routes the server serves and the
//! Rust types their handlers send: each [`Route`] carries its handler and its
//! description together, so a route cannot be served undocumented, and every
//! schema comes from the type's `JsonSchema` (the same types the engine stores).

use axum::routing::MethodRouter;
use schemars::generate::{Contract, SchemaSettings};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::state::{ErrorBody, ServerState};

/// Where component schemas live, as a JSON pointer, and how `$ref`s name them.
const COMPONENTS: &str = "/components/schemas";

/// The schema of a body, written into the document when it is assembled.
type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

/// The parameters of a query string, from the type the handler parses it into.
type QueryOf = fn() -> Schema;

/// HTTP method of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
}

impl Method {
    /// The lower-case name OpenAPI uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Post => "post",
        }
    }
}

/// One route: where, its handler and its description.
pub(crate) struct Route {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) handler: MethodRouter<ServerState>,
    pub(crate) doc: Doc,
}

impl Route {
    /// A `GET` route.
    pub(crate) fn get(path: &'static str, handler: MethodRouter<ServerState>, doc: Doc) -> Self {
        Self {
            method: Method::Get,
            path,
            handler,
            doc,
        }
    }

    /// A `POST` route.
    pub(crate) fn post(path: &'static str, handler: MethodRouter<ServerState>, doc: Doc) -> Self {
        Self {
            method: Method::Post,
            path,
            handler,
            doc,
        }
    }
}

/// What an answer carries.
enum Content {
    Text,
    Json(SchemaOf),
}

/// The description of one operation.
pub(crate) struct Doc {
    summary: &'static str,
    path_params: Vec<(&'static str, &'static str)>,
    query: Option<QueryOf>,
    body: Option<SchemaOf>,
    bearer: bool,
    read: bool,
    responses: Vec<(u16, &'static str, Content)>,
}

impl Doc {
    /// An operation with a one-line summary.
    pub(crate) fn new(summary: &'static str) -> Self {
        Self {
            summary,
            path_params: Vec::new(),
            query: None,
            body: None,
            bearer: false,
            read: false,
            responses: Vec::new(),
        }
    }

    /// A `{name}` segment of the path.
    pub(crate) fn path_param(mut self, name: &'static str, description: &'static str) -> Self {
        self.path_params.push((name, description));
        self
    }

    /// Query parameters: the fields of `Q`, as the handler parses them.
    pub(crate) fn query<Q: JsonSchema>(mut self) -> Self {
        self.query = Some(inline::<Q>);
        self
    }

    /// A JSON request body of type `B`.
    pub(crate) fn body<B: JsonSchema>(mut self) -> Self {
        self.body = Some(SchemaGenerator::subschema_for::<B>);
        self
    }

    /// Needs `Authorization: Bearer <token>`.
    pub(crate) fn bearer(mut self) -> Self {
        self.bearer = true;
        self
    }

    /// A read of the API: behind the `read` role check, open to anyone when the
    /// Server allows anonymous reads.
    pub(crate) fn read(mut self) -> Self {
        self.read = true;
        self.error(
            401,
            "Missing or unknown bearer token (reads need one: anonymousRead is off)",
        )
        .error(403, "The token's role does not allow reading")
    }

    /// Whether the route sits behind the read check.
    pub(crate) fn is_read(&self) -> bool {
        self.read
    }

    /// A JSON answer of type `T`.
    pub(crate) fn json<T: JsonSchema>(mut self, status: u16, description: &'static str) -> Self {
        let schema = SchemaGenerator::subschema_for::<T>;
        self.responses
            .push((status, description, Content::Json(schema)));
        self
    }

    /// A plain-text answer.
    pub(crate) fn text(mut self, status: u16, description: &'static str) -> Self {
        self.responses.push((status, description, Content::Text));
        self
    }

    /// An error answer, `{"error": "..."}`.
    pub(crate) fn error(self, status: u16, description: &'static str) -> Self {
        self.json::<ErrorBody>(status, description)
    }

    fn operation(&self, generator: &mut SchemaGenerator) -> Value {
        let mut parameters: Vec<Value> = self
            .path_params
            .iter()
            .map(|(name, description)| {
                json!({"name": name, "in": "path", "required": true,
                       "description": description, "schema": {"type": "string"}})
            })
            .collect();
        if let Some(query) = self.query {
            parameters.extend(query_parameters(&query()));
        }
        let responses: Map<String, Value> = self
            .responses
            .iter()
            .map(|(status, description, content)| {
                let (media, schema) = match content {
                    Content::Text => ("text/plain", json!({"type": "string"})),
                    Content::Json(schema) => ("application/json", schema(generator).to_value()),
                };
                let answer = json!({"description": description,
                                    "content": {media: {"schema": schema}}});
                (status.to_string(), answer)
            })
            .collect();
        let mut op = json!({"summary": self.summary, "responses": responses});
        if !parameters.is_empty() {
            op["parameters"] = Value::Array(parameters);
        }
        if let Some(body) = self.body {
            op["requestBody"] = json!({"required": true,
                "content": {"application/json": {"schema": body(generator).to_value()}}});
        }
        if self.bearer {
            op["security"] = json!([{"bearer": []}]);
        } else if self.read {
            op["security"] = json!([{}, {"bearer": []}]);
        }
        op
    }
}

/// The schema of `T` with nothing referenced, as query parameters need it.
fn inline<T: JsonSchema>() -> Schema {
    SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>()
}

/// One query parameter per property of an object schema.
fn query_parameters(schema: &Schema) -> Vec<Value> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let mut property = property.clone();
            let description = property
                .as_object_mut()
                .and_then(|p| p.remove("description"))
                .unwrap_or(Value::Null);
            json!({"name": name, "in": "query", "required": required.contains(&name.as_str()),
                   "description": description, "schema": property})
        })
        .collect()
}

/// The OpenAPI 3.1 document of `routes`.
pub(crate) fn document(routes: &[Route]) -> Value {
    // Serialize contract: the schemas describe what the server writes.
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = COMPONENTS.into();
            s.contract = Contract::Serialize;
            s.meta_schema = None;
        })
        .into_generator();
    let mut paths = Map::new();
    for route in routes {
        let operation = route.doc.operation(&mut generator);
        if let Value::Object(methods) = paths
            .entry(route.path)
            .or_insert_with(|| Value::Object(Map::new()))
        {
            methods.insert(route.method.as_str().to_owned(), operation);
        }
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "driftless API",
            "version": "v1",
            "description": "Read and act on Apps reconciled by driftless serve."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": generator.take_definitions(true),
        }
    })
}
