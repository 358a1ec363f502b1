//! The errors the DynamoDB API answers with: each kind's `__type` and HTTP
//! status as the SDKs expect them (they pick the exception class by the
//! name after `#`, and retry by name and status), and a message that says
//! what was wrong.

use std::fmt;

/// What kind of error, by the exception the SDKs raise for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A request that breaks a rule of the API (400, not retried).
    Validation,
    /// A condition did not hold (400, not retried).
    ConditionalCheckFailed,
    /// No such table (400).
    ResourceNotFound,
    /// A table that exists, or is not in a state for this (400).
    ResourceInUse,
    /// A partition's items would exceed the size an item collection may have (400).
    ItemCollectionSizeLimitExceeded,
    /// The node is overloaded (400, retried by the SDKs).
    ProvisionedThroughputExceeded,
    /// Too many tables or other account limits (400).
    LimitExceeded,
    /// The request cannot be served now, for a reason that passes (500, retried).
    InternalServerError,
    /// No majority of an item's replicas can be reached now (503, retried).
    ServiceUnavailable,
    /// The body is not the JSON of the operation (400).
    Serialization,
    /// `X-Amz-Target` names no operation (400).
    UnknownOperation,
    /// No credentials in the request (400).
    MissingAuthenticationToken,
    /// An access key id the endpoint does not know (400).
    UnrecognizedClient,
    /// A signature that does not match, or a request signed too long ago (400).
    InvalidSignature,
    /// An `Authorization` header that is not a whole SigV4 one (400).
    IncompleteSignature,
}

impl ErrorKind {
    /// The `__type` of the error's JSON body.
    pub fn type_name(self) -> &'static str {
        match self {
            ErrorKind::Validation => "com.amazon.coral.validate#ValidationException",
            ErrorKind::ConditionalCheckFailed => "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
            ErrorKind::ResourceNotFound => "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
            ErrorKind::ResourceInUse => "com.amazonaws.dynamodb.v20120810#ResourceInUseException",
            ErrorKind::ItemCollectionSizeLimitExceeded => {
                "com.amazonaws.dynamodb.v20120810#ItemCollectionSizeLimitExceededException"
            }
            ErrorKind::ProvisionedThroughputExceeded => {
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
            }
            ErrorKind::LimitExceeded => "com.amazonaws.dynamodb.v20120810#LimitExceededException",
            ErrorKind::InternalServerError => "com.amazonaws.dynamodb.v20120810#InternalServerError",
            ErrorKind::ServiceUnavailable => "com.amazon.coral.availability#ServiceUnavailableException",
            ErrorKind::Serialization => "com.amazon.coral.service#SerializationException",
            ErrorKind::UnknownOperation => "com.amazon.coral.service#UnknownOperationException",
            ErrorKind::MissingAuthenticationToken => "com.amazon.coral.service#MissingAuthenticationTokenException",
            ErrorKind::UnrecognizedClient => "com.amazon.coral.service#UnrecognizedClientException",
            ErrorKind::InvalidSignature => "com.amazon.coral.service#InvalidSignatureException",
            ErrorKind::IncompleteSignature => "com.amazon.coral.service#IncompleteSignatureException",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InternalServerError => 500,
            ErrorKind::ServiceUnavailable => 503,
            _ => 400,
        }
    }
}

/// An error answer: its kind and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    /// A `ValidationException`.
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Validation, message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.type_name(), self.message)
    }
}

impl std::error::Error for ApiError {}
