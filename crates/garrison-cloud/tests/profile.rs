//! An explicit AWS profile wins over credentials in the environment (the AWS CLI's rule):
//! a shell holding another account's keys must not redirect `garrison onboard --profile P`.
//! Its own test binary: it sets process environment variables.

#[tokio::test]
async fn an_explicit_profile_beats_the_environment() {
    use aws_credential_types::provider::ProvideCredentials;
    let dir = std::env::temp_dir().join(format!("garrison-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let creds = dir.join("credentials");
    std::fs::write(
        &creds,
        "[customer]\naws_access_key_id = AKIAPROFILEKEY000001\naws_secret_access_key = profile-secret\n",
    )
    .unwrap();
    let config = dir.join("config");
    std::fs::write(&config, "[profile customer]\nregion = eu-west-1\n").unwrap();
    // SAFETY: this test binary has this one test; nothing else reads the environment meanwhile.
    unsafe {
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &creds);
        std::env::set_var("AWS_CONFIG_FILE", &config);
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENTKEY01");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "env-secret");
    }
    let with_profile = garrison_cloud::Aws::from_env(Some("customer")).await;
    let got = with_profile.config.credentials_provider().unwrap().provide_credentials().await.unwrap();
    assert_eq!(got.access_key_id(), "AKIAPROFILEKEY000001");
    // Without a profile the environment is used, as before.
    let without = garrison_cloud::Aws::from_env(None).await;
    let got = without.config.credentials_provider().unwrap().provide_credentials().await.unwrap();
    assert_eq!(got.access_key_id(), "AKIAENVIRONMENTKEY01");
    let _ = std::fs::remove_dir_all(&dir);
}
