//! SDK configuration from the standard AWS chain (environment, profiles, instance roles),
//! `AWS_ENDPOINT_URL` included, so the emulator needs no special code path.

use aws_config::{BehaviorVersion, SdkConfig};

#[derive(Clone, Debug)]
pub struct Aws {
    pub config: SdkConfig,
}

impl Aws {
    /// The standard chain; `profile` selects a named profile.
    pub async fn from_env(profile: Option<&str>) -> Aws {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        Aws { config: loader.load().await }
    }

    pub fn from_config(config: SdkConfig) -> Aws {
        Aws { config }
    }

    /// S3 against a custom endpoint (the emulator) needs path-style addressing.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let b = aws_sdk_s3::config::Builder::from(&self.config).force_path_style(self.config.endpoint_url().is_some());
        aws_sdk_s3::Client::from_conf(b.build())
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config)
    }

    pub fn cloudformation(&self) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(&self.config)
    }

    pub fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config)
    }

    pub fn region(&self) -> Option<String> {
        self.config.region().map(|r| r.to_string())
    }
}
