//! Public fake values for direct identifiers (`fake:` in the schema). Nothing is learnt from the
//! data: values come from short public word lists and the seeded sampler's random numbers, in
//! formats that cannot be real (SSNs in the 999 area, which the SSA never issues; phone numbers
//! in the 555-01xx range reserved for fiction; e-mail at example.org, reserved by RFC 2606).

use rand::RngExt;
use rand::rngs::StdRng;

use crate::schema::linked::Fake;

const FIRST: [&str; 40] = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Maria",
    "Wei",
    "Fatima",
    "Ahmed",
    "Aisha",
    "Jose",
    "Ana",
    "Luis",
    "Sofia",
    "Hiroshi",
    "Yuki",
    "Olga",
    "Ivan",
    "Priya",
    "Arjun",
    "Chloe",
    "Noah",
    "Emma",
    "Liam",
    "Olivia",
];
const LAST: [&str; 40] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
];
const STREETS: [&str; 16] = [
    "Main",
    "Oak",
    "Pine",
    "Maple",
    "Cedar",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Walnut",
    "Spring",
    "North",
    "Ridge",
    "Church",
    "Willow",
];
const SUFFIX: [&str; 6] = ["St", "Ave", "Rd", "Ln", "Dr", "Ct"];

/// A UUID (version 4 layout) from the seeded generator: reproducible for a seed.
pub fn uuid(rng: &mut StdRng) -> String {
    let bytes: [u8; 16] = rng.random();
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

pub fn value(kind: Fake, rng: &mut StdRng) -> String {
    let pick = |rng: &mut StdRng, list: &[&str]| list[rng.random_range(0..list.len())].to_string();
    match kind {
        Fake::Uuid => uuid(rng),
        Fake::Ssn => format!("999-{:02}-{:04}", rng.random_range(10..100), rng.random_range(0..10_000)),
        Fake::FirstName => pick(rng, &FIRST),
        Fake::LastName => pick(rng, &LAST),
        Fake::Address => format!("{} {} {}", rng.random_range(1..2000), pick(rng, &STREETS), pick(rng, &SUFFIX)),
        Fake::Phone => format!("555-01{:02}", rng.random_range(0..100)),
        Fake::Email => format!(
            "{}.{}{}@example.org",
            pick(rng, &FIRST).to_lowercase(),
            pick(rng, &LAST).to_lowercase(),
            rng.random_range(1..1000)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn values_are_reproducible_and_cannot_be_real() {
        let mut a = StdRng::seed_from_u64(1);
        let mut b = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            assert_eq!(value(Fake::Ssn, &mut a), value(Fake::Ssn, &mut b));
        }
        let ssn = value(Fake::Ssn, &mut a);
        assert!(ssn.starts_with("999-") && ssn.len() == 11, "{ssn}");
        let u = uuid(&mut a);
        assert_eq!(uuid::Uuid::parse_str(&u).map(|u| u.get_version_num()).ok(), Some(4));
        assert!(value(Fake::Email, &mut a).ends_with("@example.org"));
        assert!(value(Fake::Phone, &mut a).starts_with("555-01"));
    }
}
