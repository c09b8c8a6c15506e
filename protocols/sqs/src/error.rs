//! SQS errors as AWS sends them. Each kind knows its three wire names: the JSON protocol's
//! `__type` shape name, the Query protocol's legacy code (also sent to JSON clients in the
//! `x-amzn-query-error` header, which the SDKs read), and the HTTP status.
//!
//! The codes and statuses are those of the SQS API reference ("Common Errors" and each action's
//! "Errors" section); the legacy `AWS.SimpleQueueService.*` codes are the model's
//! `awsQueryError` traits.

use mqbridge_broker_api::BrokerError;

/// The error kinds this adapter answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    QueueDoesNotExist,
    QueueNameExists,
    InvalidParameterValue,
    MissingParameter,
    InvalidAttributeName,
    InvalidAttributeValue,
    InvalidMessageContents,
    TooManyEntriesInBatchRequest,
    BatchEntryIdsNotDistinct,
    InvalidBatchEntryId,
    EmptyBatchRequest,
    BatchRequestTooLong,
    ReceiptHandleIsInvalid,
    MessageNotInflight,
    OverLimit,
    UnsupportedOperation,
    /// A message move task, or the queue a move task names, does not exist.
    ResourceNotFound,
    InvalidAction,
    /// The body is not valid JSON or form data.
    MalformedRequest,
    /// The body exceeds what we buffer.
    RequestTooLarge,
    AccessDenied,
    /// Access keys are configured and the request carries no signature.
    MissingAuthenticationToken,
    /// The signature's parts are malformed or missing.
    IncompleteSignature,
    /// The access key id is not a configured one.
    InvalidClientTokenId,
    /// The signature is wrong, or was made too far from our clock.
    SignatureDoesNotMatch,
    InternalError,
    ServiceUnavailable,
    /// A send while a resource alarm blocks publishers. The SDKs classify the code as
    /// throttling and retry with backoff.
    RequestThrottled,
}

impl ErrorKind {
    /// The JSON protocol's shape name (`__type` is `com.amazonaws.sqs#<shape>`).
    pub fn shape(self) -> &'static str {
        match self {
            ErrorKind::QueueDoesNotExist => "QueueDoesNotExist",
            ErrorKind::QueueNameExists => "QueueNameExists",
            ErrorKind::InvalidParameterValue => "InvalidParameterValue",
            ErrorKind::MissingParameter => "MissingParameter",
            ErrorKind::InvalidAttributeName => "InvalidAttributeName",
            ErrorKind::InvalidAttributeValue => "InvalidAttributeValue",
            ErrorKind::InvalidMessageContents => "InvalidMessageContents",
            ErrorKind::TooManyEntriesInBatchRequest => "TooManyEntriesInBatchRequest",
            ErrorKind::BatchEntryIdsNotDistinct => "BatchEntryIdsNotDistinct",
            ErrorKind::InvalidBatchEntryId => "InvalidBatchEntryId",
            ErrorKind::EmptyBatchRequest => "EmptyBatchRequest",
            ErrorKind::BatchRequestTooLong => "BatchRequestTooLong",
            ErrorKind::ReceiptHandleIsInvalid => "ReceiptHandleIsInvalid",
            ErrorKind::MessageNotInflight => "MessageNotInflight",
            ErrorKind::OverLimit => "OverLimit",
            ErrorKind::UnsupportedOperation => "UnsupportedOperation",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::InvalidAction => "InvalidAction",
            ErrorKind::MalformedRequest => "MalformedQueryString",
            ErrorKind::RequestTooLarge => "RequestEntityTooLarge",
            ErrorKind::AccessDenied => "AccessDenied",
            ErrorKind::MissingAuthenticationToken => "MissingAuthenticationToken",
            ErrorKind::IncompleteSignature => "IncompleteSignature",
            ErrorKind::InvalidClientTokenId => "InvalidClientTokenId",
            ErrorKind::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            ErrorKind::InternalError => "InternalError",
            ErrorKind::ServiceUnavailable => "ServiceUnavailable",
            ErrorKind::RequestThrottled => "RequestThrottled",
        }
    }

    /// The Query protocol's error code (the `awsQueryError` code where the model has one).
    pub fn query_code(self) -> &'static str {
        match self {
            ErrorKind::QueueDoesNotExist => "AWS.SimpleQueueService.NonExistentQueue",
            ErrorKind::QueueNameExists => "QueueAlreadyExists",
            ErrorKind::TooManyEntriesInBatchRequest => {
                "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
            }
            ErrorKind::BatchEntryIdsNotDistinct => {
                "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
            }
            ErrorKind::InvalidBatchEntryId => "AWS.SimpleQueueService.InvalidBatchEntryId",
            ErrorKind::EmptyBatchRequest => "AWS.SimpleQueueService.EmptyBatchRequest",
            ErrorKind::BatchRequestTooLong => "AWS.SimpleQueueService.BatchRequestTooLong",
            ErrorKind::MessageNotInflight => "AWS.SimpleQueueService.MessageNotInflight",
            ErrorKind::UnsupportedOperation => "AWS.SimpleQueueService.UnsupportedOperation",
            other => other.shape(),
        }
    }

    pub fn status(self) -> u16 {
        match self {
            ErrorKind::OverLimit
            | ErrorKind::AccessDenied
            | ErrorKind::MissingAuthenticationToken
            | ErrorKind::InvalidClientTokenId
            | ErrorKind::SignatureDoesNotMatch => 403,
            // The model's `httpError` and `awsQueryError` both say 404 for this one.
            ErrorKind::ResourceNotFound => 404,
            ErrorKind::RequestTooLarge => 413,
            ErrorKind::InternalError => 500,
            ErrorKind::ServiceUnavailable => 503,
            _ => 400,
        }
    }

    /// Whether the caller is at fault (`Sender`) or we are (`Receiver`).
    pub fn is_sender_fault(self) -> bool {
        self.status() < 500
    }
}

/// An error answered to one request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct SqsError {
    pub kind: ErrorKind,
    /// Written for the client, as AWS's messages are; never internals.
    pub message: String,
}

impl SqsError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SqsError {
            kind,
            message: message.into(),
        }
    }

    pub fn no_queue() -> Self {
        SqsError::new(
            ErrorKind::QueueDoesNotExist,
            "The specified queue does not exist.",
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        SqsError::new(ErrorKind::InvalidParameterValue, message)
    }

    /// SendMessage's and SendMessageBatch's `RequestThrottled` (HTTP 400, the status the API
    /// reference gives it): publishers wait while the broker is short of memory or disk.
    pub fn throttled() -> Self {
        SqsError::new(
            ErrorKind::RequestThrottled,
            "Rate exceeded: the broker is short of memory or disk space; retry later.",
        )
    }

    pub fn missing(parameter: &str) -> Self {
        SqsError::new(
            ErrorKind::MissingParameter,
            format!("The request must contain the parameter {parameter}."),
        )
    }
}

/// Core errors reach SQS clients by meaning; the text is the core's, written for peers.
impl From<BrokerError> for SqsError {
    fn from(error: BrokerError) -> Self {
        match error {
            BrokerError::NotFound(_) => SqsError::no_queue(),
            BrokerError::AccessRefused(text) | BrokerError::NotAllowed(text) => {
                SqsError::new(ErrorKind::AccessDenied, text)
            }
            BrokerError::ResourceLimit(text) => SqsError::new(ErrorKind::OverLimit, text),
            BrokerError::Unavailable(text) => SqsError::new(ErrorKind::ServiceUnavailable, text),
            other => SqsError::invalid(other.to_string()),
        }
    }
}
