//! SNS's errors: each is a Query error code with its HTTP status and fault side, and a shape
//! name for the JSON protocol (the model's exception names; the `x-amzn-query-error` header
//! carries the Query code, which is what the SDKs read).

use std::fmt;

/// The errors SNS answers with (a subset of the model's, the ones we raise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidParameter,
    InvalidParameterValue,
    NotFound,
    ResourceNotFound,
    AuthorizationError,
    SubscriptionLimitExceeded,
    FilterPolicyLimitExceeded,
    EmptyBatchRequest,
    TooManyEntriesInBatchRequest,
    BatchEntryIdsNotDistinct,
    InvalidBatchEntryId,
    BatchRequestTooLong,
    InvalidAction,
    /// A publish while a resource alarm blocks publishers: the code SNS answers a throttled
    /// Publish with, which the SDKs classify as throttling and retry with backoff.
    Throttling,
    Internal,
}

impl ErrorKind {
    /// The Query protocol's `<Code>`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidParameter => "InvalidParameter",
            // The model's InvalidParameterValueException says this code on the wire.
            ErrorKind::InvalidParameterValue => "ParameterValueInvalid",
            ErrorKind::NotFound => "NotFound",
            ErrorKind::ResourceNotFound => "ResourceNotFound",
            ErrorKind::AuthorizationError => "AuthorizationError",
            ErrorKind::SubscriptionLimitExceeded => "SubscriptionLimitExceeded",
            ErrorKind::FilterPolicyLimitExceeded => "FilterPolicyLimitExceeded",
            ErrorKind::EmptyBatchRequest => "EmptyBatchRequest",
            ErrorKind::TooManyEntriesInBatchRequest => "TooManyEntriesInBatchRequest",
            ErrorKind::BatchEntryIdsNotDistinct => "BatchEntryIdsNotDistinct",
            ErrorKind::InvalidBatchEntryId => "InvalidBatchEntryId",
            ErrorKind::BatchRequestTooLong => "BatchRequestTooLong",
            ErrorKind::InvalidAction => "InvalidAction",
            ErrorKind::Throttling => "Throttling",
            ErrorKind::Internal => "InternalError",
        }
    }

    /// The JSON protocol's `__type` shape name.
    pub fn shape(self) -> String {
        match self {
            ErrorKind::InvalidAction => "InvalidAction".to_owned(),
            ErrorKind::InvalidParameterValue => "InvalidParameterValueException".to_owned(),
            ErrorKind::Internal => "InternalErrorException".to_owned(),
            other => format!("{}Exception", other.code()),
        }
    }

    pub fn status(self) -> u16 {
        match self {
            ErrorKind::NotFound | ErrorKind::ResourceNotFound => 404,
            ErrorKind::AuthorizationError
            | ErrorKind::SubscriptionLimitExceeded
            | ErrorKind::FilterPolicyLimitExceeded => 403,
            ErrorKind::Internal => 500,
            _ => 400,
        }
    }

    pub fn is_sender_fault(self) -> bool {
        self != ErrorKind::Internal
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsError {
    pub kind: ErrorKind,
    pub message: String,
}

impl SnsError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SnsError {
            kind,
            message: message.into(),
        }
    }

    /// `Invalid parameter: <what>`, AWS's wording for most refusals.
    pub fn invalid(what: impl fmt::Display) -> Self {
        SnsError::new(
            ErrorKind::InvalidParameter,
            format!("Invalid parameter: {what}"),
        )
    }

    pub fn missing(name: &str) -> Self {
        SnsError::new(
            ErrorKind::InvalidParameter,
            format!("Invalid parameter: {name}"),
        )
    }

    pub fn no_topic() -> Self {
        SnsError::new(ErrorKind::NotFound, "Topic does not exist")
    }

    pub fn no_subscription() -> Self {
        SnsError::new(ErrorKind::NotFound, "Subscription does not exist")
    }

    /// Publish's and PublishBatch's refusal while the broker is short of memory or disk
    /// (HTTP 400, the status of the common `ThrottlingException`).
    pub fn throttled() -> Self {
        SnsError::new(
            ErrorKind::Throttling,
            "Rate exceeded: the broker is short of memory or disk space; retry later.",
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        SnsError::new(ErrorKind::Internal, message)
    }
}

impl fmt::Display for SnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.message)
    }
}

impl std::error::Error for SnsError {}

/// Core errors reach SNS clients as internal errors, except a broker limit: the queues and
/// bindings a subscription needs are what SNS counts as subscriptions.
impl From<mqbridge_broker_api::BrokerError> for SnsError {
    fn from(error: mqbridge_broker_api::BrokerError) -> Self {
        match error {
            mqbridge_broker_api::BrokerError::ResourceLimit(text) => {
                SnsError::new(ErrorKind::SubscriptionLimitExceeded, text)
            }
            other => SnsError::internal(other.to_string()),
        }
    }
}
