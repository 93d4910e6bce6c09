//! `garrison publish-templates --bucket B`: renders every role version's CloudFormation
//! template and puts it at `<role_type>/<version>` in the operator's bucket, with the AWS
//! credentials of the standard chain. Serve with `--template-bucket B` so that themis
//! `cft.s3_url` points there.

use std::process::ExitCode;

use clap::Parser;
use garrison_catalog::{Catalog, cft};
use garrison_cloud::{Aws, templates};

#[derive(Parser, Debug)]
#[command(name = "garrison publish-templates", about = "Publish the role templates to an S3 bucket")]
struct Args {
    /// The bucket (it must exist; its region comes from the AWS configuration)
    #[arg(long)]
    bucket: String,
    /// The AWS principal the roles trust: a 12-digit account id or a role ARN
    #[arg(long = "aws-principal", env = "GARRISON_AWS_PRINCIPAL", default_value = crate::serve::DEFAULT_PRINCIPAL)]
    aws_principal: String,
    /// AWS profile to use; it wins over credentials in the environment, as with the AWS CLI
    #[arg(long)]
    profile: Option<String>,
    /// Refuse to write unless the AWS credentials are this 12-digit account's
    #[arg(long = "expect-account")]
    expect_account: Option<String>,
}

pub async fn main(argv: Vec<String>) -> ExitCode {
    crate::serve::init_tracing();
    let pos = argv.iter().position(|a| a == "publish-templates").unwrap_or(1);
    let args = Args::parse_from(
        std::iter::once("garrison publish-templates".to_string()).chain(argv[pos + 1..].iter().cloned()),
    );
    let aws = Aws::from_env(args.profile.as_deref()).await;
    // The account about to be written to is named before the first write.
    let account = match garrison_cloud::stacks::caller_account(&aws).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("garrison publish-templates: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!("garrison publish-templates: AWS account {account}, bucket {}", args.bucket);
    if let Some(want) = &args.expect_account
        && want != &account
    {
        eprintln!(
            "garrison publish-templates: the AWS credentials are for account {account}, not {want} (--expect-account): nothing was written"
        );
        return ExitCode::from(1);
    }
    let catalog = Catalog::builtin();
    let objects: Vec<(String, Vec<u8>)> = catalog
        .all()
        .iter()
        .map(|r| {
            let body = serde_json::to_vec_pretty(&cft::render(r, &args.aws_principal)).expect("template serializes");
            (format!("{}/{}", r.role_type, r.version), body)
        })
        .collect();
    match templates::publish(&aws, &args.bucket, objects).await {
        Ok(keys) => {
            for k in keys {
                println!("published s3://{}/{k}  {}", args.bucket, templates::template_url(&args.bucket, &k));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("garrison publish-templates: {e}");
            ExitCode::from(1)
        }
    }
}
