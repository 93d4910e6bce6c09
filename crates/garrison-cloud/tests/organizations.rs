//! An organization on the emulator read as garrison reads it from the management account:
//! nested units, accounts in each with their state, the management account and the root;
//! and the accounts a selection of units enrolls, from that read.

use std::collections::BTreeSet;

use garrison_cloud::Aws;
use garrison_cloud::emulator::Moto;
use garrison_model::organization::{AccountState, Selection, UnitItem, enrolled};
use garrison_testkit::organization;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_organization_tree_is_read_whole_and_selections_enroll_from_it() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    let root = organization::create(&aws).await.unwrap();
    let prod = organization::unit(&aws, &root, "prod").await.unwrap();
    let web = organization::unit(&aws, &prod, "web").await.unwrap();
    let sandbox = organization::unit(&aws, &root, "sandbox").await.unwrap();
    let mut ids = vec![];
    for (name, into) in [("prod-a", &prod), ("web-a", &web), ("web-b", &web), ("sandbox-a", &sandbox)] {
        ids.push(organization::account(&aws, &root, into, name).await.unwrap());
    }

    let t = garrison_cloud::organizations::tree(&aws).await.unwrap();
    assert_eq!(t.root, root);
    assert_eq!(t.management_account, "123456789012");
    assert_eq!(t.units.get(&web), Some(&prod), "a nested unit knows its parent");
    assert_eq!(t.units.get(&prod), Some(&root));
    assert_eq!(t.units.len(), 3);
    for (id, parent) in ids.iter().zip([&prod, &web, &web, &sandbox]) {
        let a = &t.accounts[id];
        assert_eq!((&a.parent, a.state), (parent, AccountState::Active), "{id}");
    }
    assert_eq!(t.accounts[&t.management_account].parent, root, "the management account sits in the root");

    let set = |v: &[&String]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let sel = |include: Vec<(&String, bool)>, exclude_units: Vec<&String>| Selection {
        include: include.into_iter().map(|(u, children)| UnitItem { unit: u.clone(), children }).collect(),
        exclude_units: exclude_units.into_iter().cloned().collect(),
        exclude_accounts: vec![],
    };
    assert_eq!(enrolled(&t, &sel(vec![(&prod, false)], vec![])), set(&[&ids[0]]));
    assert_eq!(enrolled(&t, &sel(vec![(&prod, true)], vec![])), set(&[&ids[0], &ids[1], &ids[2]]));
    assert_eq!(
        enrolled(&t, &sel(vec![(&root, true)], vec![&web])),
        set(&[&ids[0], &ids[3]]),
        "never the management account"
    );
}
