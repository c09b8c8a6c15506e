//! AWS's published SigV4 test suite (`aws-sig-v4-test-suite`: key `AKIDEXAMPLE`, region
//! `us-east-1`, service `service`, 2015-08-30T12:36:00Z), then what the suite does not cover:
//! verification failures, the clock, presigned requests and unsigned payloads.

use super::canonical::{canonical_query, canonical_uri, hex};
use super::date::parse_amz_date;
use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const AMZ_DATE: &str = "20150830T123600Z";
/// 2015-08-30T12:36:00Z in Unix seconds.
const SIGNED_AT: u64 = 1_440_938_160;
const HOST: (&str, &str) = ("Host", "example.amazonaws.com");
const DATE: (&str, &str) = ("X-Amz-Date", AMZ_DATE);
const SUITE: Credentials = Credentials {
    access_key_id: "AKIDEXAMPLE",
    secret_access_key: SECRET,
    region: "us-east-1",
    service: "service",
};

struct Vector {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    /// Besides `Host` and `X-Amz-Date`, which every case has.
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    signed_headers: &'static str,
    signature: &'static str,
}

const VECTORS: &[Vector] = &[
    Vector {
        name: "get-vanilla",
        method: "GET",
        path: "/",
        query: "",
        headers: &[],
        body: b"",
        signed_headers: "host;x-amz-date",
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Vector {
        name: "post-vanilla",
        method: "POST",
        path: "/",
        query: "",
        headers: &[],
        body: b"",
        signed_headers: "host;x-amz-date",
        signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    },
    Vector {
        name: "get-vanilla-query-order-key-case",
        method: "GET",
        path: "/",
        query: "Param2=value2&Param1=value1",
        headers: &[],
        body: b"",
        signed_headers: "host;x-amz-date",
        signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    },
    Vector {
        name: "get-vanilla-query-order-value",
        method: "GET",
        path: "/",
        query: "Param1=value2&Param1=value1",
        headers: &[],
        body: b"",
        signed_headers: "host;x-amz-date",
        signature: "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
    },
    Vector {
        name: "get-unreserved",
        method: "GET",
        path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        query: "",
        headers: &[],
        body: b"",
        signed_headers: "host;x-amz-date",
        signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    },
    Vector {
        name: "get-header-value-trim",
        method: "GET",
        path: "/",
        query: "",
        headers: &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
        body: b"",
        signed_headers: "host;my-header1;my-header2;x-amz-date",
        signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    },
    Vector {
        name: "get-header-key-duplicate",
        method: "GET",
        path: "/",
        query: "",
        headers: &[
            ("My-Header1", "value2"),
            ("My-Header1", "value2"),
            ("My-Header1", "value1"),
        ],
        body: b"",
        signed_headers: "host;my-header1;x-amz-date",
        signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    },
    Vector {
        name: "post-x-www-form-urlencoded",
        method: "POST",
        path: "/",
        query: "",
        headers: &[("Content-Type", "application/x-www-form-urlencoded")],
        body: b"Param1=value1",
        signed_headers: "content-type;host;x-amz-date",
        signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    },
    Vector {
        name: "post-x-www-form-urlencoded-parameters",
        method: "POST",
        path: "/",
        query: "",
        headers: &[(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf8",
        )],
        body: b"Param1=value1",
        signed_headers: "content-type;host;x-amz-date",
        signature: "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe",
    },
];

fn headers_of(vector: &Vector) -> Vec<(&'static str, &'static str)> {
    let mut headers = vec![HOST];
    headers.extend_from_slice(vector.headers);
    headers.push(DATE);
    headers
}

fn request<'a>(vector: &Vector, headers: &'a [(&'a str, &'a str)]) -> Request<'a> {
    Request {
        method: vector.method,
        path: vector.path,
        query: vector.query,
        headers,
    }
}

fn expected_authorization(vector: &Vector) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders={}, Signature={}",
        vector.signed_headers, vector.signature
    )
}

fn suite_secret(key_id: &str) -> Option<&'static str> {
    (key_id == "AKIDEXAMPLE").then_some(SECRET)
}

/// get-vanilla's headers plus its Authorization header.
fn signed_vanilla() -> Vec<(&'static str, String)> {
    let vector = VECTORS.first().expect("get-vanilla");
    let mut headers: Vec<(&str, String)> = headers_of(vector)
        .into_iter()
        .map(|(n, v)| (n, v.to_owned()))
        .collect();
    headers.push(("Authorization", expected_authorization(vector)));
    headers
}

fn verify_headers(headers: &[(&str, String)], now: u64) -> Result<String, SignatureError> {
    let borrowed: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let request = Request {
        method: "GET",
        path: "/",
        query: "",
        headers: &borrowed,
    };
    verify(&request, b"", now, suite_secret)
}

#[test]
fn signing_matches_the_aws_test_suite() {
    for vector in VECTORS {
        let headers = headers_of(vector);
        let signed = sign(&request(vector, &headers), vector.body, &SUITE, AMZ_DATE);
        assert_eq!(signed, expected_authorization(vector), "{}", vector.name);
    }
}

#[test]
fn the_suites_signed_requests_verify() {
    for vector in VECTORS {
        let authorization = expected_authorization(vector);
        let mut headers = headers_of(vector);
        headers.push(("Authorization", authorization.as_str()));
        let request = request(vector, &headers);
        let verified = verify(&request, vector.body, SIGNED_AT, suite_secret);
        assert_eq!(verified.as_deref(), Ok("AKIDEXAMPLE"), "{}", vector.name);
    }
}

#[test]
fn a_changed_body_header_or_secret_does_not_verify() {
    let vector = VECTORS
        .iter()
        .find(|v| v.name == "post-x-www-form-urlencoded")
        .expect("vector");
    let authorization = expected_authorization(vector);
    let mut headers = headers_of(vector);
    headers.push(("Authorization", authorization.as_str()));
    let request = request(vector, &headers);
    let tampered = verify(&request, b"Param1=value2", SIGNED_AT, suite_secret);
    assert_eq!(tampered, Err(SignatureError::Mismatch));
    let wrong_secret = verify(&request, vector.body, SIGNED_AT, |_| Some("not the secret"));
    assert_eq!(wrong_secret, Err(SignatureError::Mismatch));

    let mut other_host = signed_vanilla();
    other_host[0].1 = "example.org".to_owned();
    assert_eq!(
        verify_headers(&other_host, SIGNED_AT),
        Err(SignatureError::Mismatch)
    );
    let mut truncated = signed_vanilla();
    let last = truncated.last_mut().expect("authorization");
    last.1.pop();
    assert_eq!(
        verify_headers(&truncated, SIGNED_AT),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn unknown_keys_and_missing_or_incomplete_authentication_are_told_apart() {
    let unknown = verify(
        &Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &[
                HOST,
                DATE,
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=OTHER/20150830/us-east-1/service/aws4_request, \
                     SignedHeaders=host;x-amz-date, Signature=00",
                ),
            ],
        },
        b"",
        SIGNED_AT,
        suite_secret,
    );
    assert_eq!(unknown, Err(SignatureError::UnknownAccessKey));
    assert_eq!(
        verify_headers(&[("Host", "h".to_owned())], SIGNED_AT),
        Err(SignatureError::Missing)
    );
    let mut no_signature = signed_vanilla();
    no_signature.last_mut().expect("authorization").1 =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date"
            .to_owned();
    let error = verify_headers(&no_signature, SIGNED_AT).expect_err("incomplete");
    assert_eq!(
        error.to_string(),
        "Authorization header requires 'Signature' parameter."
    );
    let mut no_host = signed_vanilla();
    no_host.last_mut().expect("authorization").1 = expected_authorization(&Vector {
        signed_headers: "x-amz-date",
        ..VECTORS[0]
    });
    assert!(matches!(
        verify_headers(&no_host, SIGNED_AT),
        Err(SignatureError::Incomplete(_))
    ));
}

#[test]
fn requests_signed_more_than_15_minutes_away_are_refused_in_awss_words() {
    let fifteen = CLOCK_SKEW_MAX_SECS;
    assert!(verify_headers(&signed_vanilla(), SIGNED_AT + fifteen).is_ok());
    assert!(verify_headers(&signed_vanilla(), SIGNED_AT - fifteen).is_ok());
    let late = verify_headers(&signed_vanilla(), SIGNED_AT + fifteen + 60).expect_err("late");
    assert_eq!(
        late.to_string(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z \
         (20150830T125200Z - 15 min.)"
    );
    let early = verify_headers(&signed_vanilla(), SIGNED_AT - fifteen - 60).expect_err("early");
    assert_eq!(
        early.to_string(),
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123500Z \
         (20150830T122000Z + 15 min.)"
    );
}

#[test]
fn the_credential_date_must_be_the_requests_date() {
    let mut headers = signed_vanilla();
    headers[1].1 = "20150831T123600Z".to_owned();
    let error = verify_headers(&headers, SIGNED_AT + 86_400).expect_err("scope date");
    assert_eq!(
        error.to_string(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '20150830' != '20150831', from '20150831T123600Z'."
    );
}

/// AWS's documentation example of a presigned IAM ListUsers request.
const PRESIGNED_QUERY: &str = "Action=ListUsers&Version=2010-05-08&X-Amz-Algorithm=AWS4-HMAC-SHA256\
    &X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fiam%2Faws4_request\
    &X-Amz-Date=20150830T123600Z&X-Amz-Expires=60\
    &X-Amz-SignedHeaders=content-type%3Bhost%3Bx-amz-date\
    &X-Amz-Signature=63613d9c6a68b0e499ed9beeeabe0c4f3295742554209d6f109fe3c9563f56c3";

fn verify_presigned(query: &str, now: u64) -> Result<String, SignatureError> {
    let request = Request {
        method: "GET",
        path: "/",
        query,
        headers: &[
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("Host", "iam.amazonaws.com"),
            DATE,
        ],
    };
    verify(&request, b"", now, suite_secret)
}

#[test]
fn a_presigned_request_verifies_until_it_expires() {
    assert_eq!(
        verify_presigned(PRESIGNED_QUERY, SIGNED_AT + 60).as_deref(),
        Ok("AKIDEXAMPLE")
    );
    let expired = verify_presigned(PRESIGNED_QUERY, SIGNED_AT + 61).expect_err("expired");
    assert!(
        matches!(expired, SignatureError::Expired { .. }),
        "{expired}"
    );
    let changed = PRESIGNED_QUERY.replace("ListUsers", "ListGroups");
    assert_eq!(
        verify_presigned(&changed, SIGNED_AT),
        Err(SignatureError::Mismatch)
    );
    let incomplete = PRESIGNED_QUERY.replace("&X-Amz-Expires=60", "");
    assert!(matches!(
        verify_presigned(&incomplete, SIGNED_AT),
        Err(SignatureError::Incomplete(_))
    ));
}

#[test]
fn an_unsigned_payload_leaves_the_body_out_and_a_stated_digest_must_be_the_bodys() {
    let headers = [HOST, ("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"), DATE];
    let unsigned = Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
    };
    let authorization = sign(&unsigned, b"one body", &SUITE, AMZ_DATE);
    let mut with_auth = headers.to_vec();
    with_auth.push(("Authorization", authorization.as_str()));
    let request = Request {
        headers: &with_auth,
        ..unsigned
    };
    assert!(verify(&request, b"another body", SIGNED_AT, suite_secret).is_ok());

    let empty_digest = hex(&Sha256::digest(b""));
    let headers = [HOST, ("X-Amz-Content-Sha256", empty_digest.as_str()), DATE];
    let stated = Request {
        headers: &headers,
        ..unsigned
    };
    let authorization = sign(&stated, b"", &SUITE, AMZ_DATE);
    let mut with_auth = headers.to_vec();
    with_auth.push(("Authorization", authorization.as_str()));
    let request = Request {
        headers: &with_auth,
        ..unsigned
    };
    assert!(verify(&request, b"", SIGNED_AT, suite_secret).is_ok());
    assert_eq!(
        verify(&request, b"not empty", SIGNED_AT, suite_secret),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn paths_lose_dot_segments_and_are_encoded_again() {
    assert_eq!(canonical_uri("/"), "/");
    assert_eq!(canonical_uri("/example1/example2/../.."), "/");
    assert_eq!(canonical_uri("/./"), "/");
    assert_eq!(canonical_uri("/a/./b/../c/"), "/a/c/");
    assert_eq!(
        canonical_uri("/000000000000/my-queue"),
        "/000000000000/my-queue"
    );
    // The SDKs sign a non-S3 path encoded twice.
    assert_eq!(canonical_uri("/%E1%88%B4"), "/%25E1%2588%25B4");
}

#[test]
fn query_strings_are_decoded_then_encoded_one_way() {
    assert_eq!(canonical_query("b=2&a=1&a", false), "a=&a=1&b=2");
    assert_eq!(canonical_query("k=a%20b&k2=a+b", false), "k=a%20b&k2=a%2Bb");
    assert_eq!(canonical_query("k=%7e%2F%zz", false), "k=~%2F%25zz");
    assert_eq!(canonical_query("X-Amz-Signature=1&a=1", true), "a=1");
}

#[test]
fn amz_dates_round_trip_and_reject_what_is_not_one() {
    assert_eq!(format_amz_date(SIGNED_AT), AMZ_DATE);
    assert_eq!(parse_amz_date(AMZ_DATE), Some(SIGNED_AT));
    assert_eq!(format_amz_date(0), "19700101T000000Z");
    assert_eq!(
        parse_amz_date("20240229T235959Z"),
        Some(1_709_251_199),
        "a leap day"
    );
    for bad in [
        "20150230T000000Z",
        "20151301T000000Z",
        "20150830T246000Z",
        "2015-08-30T12:36",
        "20150830T123600",
        "",
    ] {
        assert_eq!(parse_amz_date(bad), None, "{bad}");
    }
}
