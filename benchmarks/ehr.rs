//! EHR-shaped data at scale (issue #8): a seeded generator of linked tables shaped like a
//! Synthea CSV export, and a benchmark of the linked fit + sample on it.
//!
//! - `cargo bench --bench ehr -- gen N DIR [--seed S]` writes `DIR/patients.csv`,
//!   `encounters.csv`, `conditions.csv`, `medications.csv` and `DIR/schema.yaml` (a linked
//!   schema whose domains are the generator's own code lists, hence public by construction).
//!   Same N and seed give byte-identical files, whatever the number of threads.
//! - `cargo bench --bench ehr -- [PERSONS...]` (default 10000 100000): per size, generate into a
//!   temporary directory, then run `privsynth synth DIR --schema DIR/schema.yaml --epsilon 1 ...`
//!   in a child process (this binary in its hidden `child-synth` mode) and report its wall time
//!   and peak RSS, so that generation and the harness do not count towards the pipeline's memory.
//!
//! The model of a person (see `person`): demographics; a frailty factor (log-normal) that scales
//! the visit rate and gives the heavy tail of events per person; a life lived year by year from
//! birth to death or the reference date, with age- and sex-dependent onsets of chronic
//! conditions, pregnancies and a Gompertz death hazard. Visits are then played in time order:
//! each gets an encounter class and code by age, sex and chronic load; acute conditions,
//! social findings, chronic diagnoses and pregnancy conditions are attached to encounters with
//! their dates, and medications are prescribed for them and renewed at later visits.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, LogNormal, Poisson};
use rayon::prelude::*;

const DAY: i64 = 86_400;
/// 2025-01-01: the end of every history (Synthea's reference date); living people's events
/// come before it.
const END_DAY: i64 = 20_089;
/// 1920-01-01: no one is born earlier (bounds of the schema's date domains).
const MIN_BIRTH_DAY: i64 = -18_262;

// ---------------------------------------------------------------------------------------------
// Public code lists (SNOMED CT for encounters and conditions, RxNorm for medications, as in
// Synthea). They are the schema's domains.

const CLASSES: [&str; 10] = [
    "ambulatory",
    "wellness",
    "outpatient",
    "urgentcare",
    "emergency",
    "inpatient",
    "snf",
    "hospice",
    "home",
    "virtual",
];
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Ambulatory,
    Wellness,
    Outpatient,
    Urgentcare,
    Emergency,
    Inpatient,
    Snf,
    Hospice,
    Home,
    Virtual,
}
const CLASS_OF: [Class; 10] = [
    Class::Ambulatory,
    Class::Wellness,
    Class::Outpatient,
    Class::Urgentcare,
    Class::Emergency,
    Class::Inpatient,
    Class::Snf,
    Class::Hospice,
    Class::Home,
    Class::Virtual,
];

/// Encounter codes (code, description for readers of this file).
mod enc {
    pub const WELL_CHILD: &str = "410620009"; // Well child visit
    pub const GENERAL_EXAM: &str = "162673000"; // General examination of patient
    pub const DEATH_CERT: &str = "308646001"; // Death Certification
    pub const PROBLEM: &str = "185347001"; // Encounter for problem
    pub const SYMPTOM: &str = "185345009"; // Encounter for symptom
    pub const FOLLOW_UP: &str = "390906007"; // Follow-up encounter
    pub const ASTHMA_FOLLOW_UP: &str = "394701000"; // Asthma follow-up
    pub const PRENATAL_INITIAL: &str = "424441002"; // Prenatal initial visit
    pub const PRENATAL: &str = "424619006"; // Prenatal visit
    pub const POSTNATAL: &str = "169762003"; // Postnatal visit
    pub const OBSTETRIC_ADMISSION: &str = "183460006"; // Obstetric emergency hospital admission
    pub const ER_ADMISSION: &str = "50849002"; // Emergency room admission
    pub const ASTHMA_ADMISSION: &str = "183478001"; // Emergency hospital admission for asthma
    pub const URGENT_CARE: &str = "702927004"; // Urgent care clinic
    pub const SNF: &str = "449411000124106"; // Admission to skilled nursing facility
    pub const HOSPICE: &str = "305336008"; // Admission to hospice
    pub const HOME: &str = "439708006"; // Home visit
    /// Other ambulatory codes, with weights.
    pub const AMBULATORY: [(&str, f64); 8] = [
        (PROBLEM, 4.0),
        (SYMPTOM, 2.0),
        ("371883000", 1.0), // Outpatient procedure
        ("316744009", 0.5), // Office Visit
        ("270427003", 0.3), // Patient-initiated encounter
        ("410410006", 0.3), // Screening surveillance
        ("170837001", 0.2), // Allergic disorder initial assessment
        ("439740005", 0.2), // Postoperative follow-up visit
    ];
    pub const OUTPATIENT: [(&str, f64); 4] = [
        ("185349003", 4.0), // Encounter for check up
        ("308335008", 2.0), // Patient encounter procedure
        ("698314001", 1.5), // Consultation for treatment
        ("33879002", 0.5),  // Administration of vaccine to produce active immunity (x6 for children)
    ];
    pub const EMERGENCY: [(&str, f64); 3] = [
        (ER_ADMISSION, 4.0),
        ("182813001", 1.5), // Emergency treatment
        ("183452005", 1.0), // Emergency hospital admission
    ];
    pub const INPATIENT: [(&str, f64); 3] = [
        ("32485007", 3.0),  // Hospital admission
        ("305408004", 2.0), // Admission to surgical department
        ("305342007", 1.0), // Admission to ward
    ];
    pub const VIRTUAL: [(&str, f64); 2] = [
        ("185317003", 1.0), // Telephone encounter
        ("448337001", 1.0), // Telemedicine consultation with patient
    ];
    /// Base cost per class (order of `CLASSES`), in dollars, before a per-encounter factor.
    pub const BASE_COST: [f64; 10] = [85.55, 136.80, 110.51, 142.42, 146.18, 216.59, 180.00, 165.00, 95.00, 49.00];
}

/// Chronic conditions: onset hazard per year `h60 * exp(slope * (age - 60))` between the onset
/// ages, times a sex factor; active for life (STOP empty), treated by one of `meds`.
struct Chronic {
    code: &'static str,
    ages: (f64, f64),
    /// Hazard factor for (female, male).
    sex: (f64, f64),
    h60: f64,
    slope: f64,
    meds: &'static [&'static str],
    /// Diagnosed at an emergency admission rather than an ambulatory visit.
    emergency: bool,
}

const fn ch(
    code: &'static str,
    ages: (f64, f64),
    sex: (f64, f64),
    h60: f64,
    slope: f64,
    meds: &'static [&'static str],
) -> Chronic {
    Chronic { code, ages, sex, h60, slope, meds, emergency: false }
}
const BOTH: (f64, f64) = (1.0, 1.0);
const F_ONLY: (f64, f64) = (1.0, 0.0);
const M_ONLY: (f64, f64) = (0.0, 1.0);

const CHRONIC: [Chronic; 40] = [
    ch("59621000", (18.0, 110.0), BOTH, 0.030, 0.04, &["314076", "308136", "310798"]), // Essential hypertension
    ch("55822004", (25.0, 110.0), BOTH, 0.020, 0.04, &["314231", "259255"]),           // Hyperlipidemia
    ch("302870006", (25.0, 110.0), BOTH, 0.006, 0.03, &["314231"]),                    // Hypertriglyceridemia
    ch("15777000", (18.0, 110.0), BOTH, 0.020, 0.02, &[]),                             // Prediabetes
    ch("44054006", (25.0, 110.0), BOTH, 0.010, 0.03, &["860975", "106892"]),           // Diabetes mellitus type 2
    ch("237602007", (25.0, 110.0), BOTH, 0.006, 0.02, &[]),                            // Metabolic syndrome X
    ch("162864005", (18.0, 110.0), BOTH, 0.015, 0.0, &[]),                             // Body mass index 30+ - obesity
    ch("195967001", (1.0, 40.0), BOTH, 0.0001, -0.08, &["895996", "630208", "351109"]), // Asthma
    ch("192127007", (5.0, 12.0), (0.5, 1.5), 0.01, 0.0, &["1091392"]), // Child attention deficit disorder
    ch("431855005", (40.0, 110.0), BOTH, 0.004, 0.05, &["205923"]),    // Chronic kidney disease stage 1
    ch("431856006", (40.0, 110.0), BOTH, 0.003, 0.05, &["205923"]),    // Chronic kidney disease stage 2
    ch("433144002", (40.0, 110.0), BOTH, 0.002, 0.06, &["205923", "1719286"]), // Chronic kidney disease stage 3
    ch("414545008", (40.0, 110.0), (0.6, 1.4), 0.005, 0.06, &["309362", "705129"]), // Ischemic heart disease
    ch("49436004", (50.0, 110.0), BOTH, 0.002, 0.08, &["855332", "197604", "897685"]), // Atrial fibrillation
    ch("88805009", (50.0, 110.0), BOTH, 0.0015, 0.08, &["1719286"]),   // Chronic congestive heart failure
    ch("239873007", (40.0, 110.0), BOTH, 0.006, 0.05, &["849574"]),    // Osteoarthritis of knee
    ch("239872002", (40.0, 110.0), BOTH, 0.003, 0.05, &["849574"]),    // Osteoarthritis of hip
    ch("201834006", (40.0, 110.0), (1.3, 0.7), 0.003, 0.05, &["849574"]), // Localized primary osteoarthritis of the hand
    ch("82423001", (18.0, 110.0), BOTH, 0.004, 0.01, &["856987"]),        // Chronic pain
    ch("278860009", (18.0, 110.0), BOTH, 0.004, 0.0, &["856987", "1049221"]), // Chronic low back pain
    ch("1121000119107", (18.0, 110.0), BOTH, 0.002, 0.0, &["849574"]),    // Chronic neck pain
    ch("40055000", (5.0, 110.0), BOTH, 0.003, 0.0, &[]),                  // Chronic sinusitis
    ch("271737000", (10.0, 110.0), (1.6, 0.4), 0.004, 0.02, &["310325"]), // Anemia
    ch("13645005", (40.0, 110.0), BOTH, 0.002, 0.06, &["896209", "2123111"]), // Chronic obstructive lung disease
    ch("87433001", (45.0, 110.0), BOTH, 0.001, 0.06, &["896209"]),        // Pulmonary emphysema
    ch("64859006", (50.0, 110.0), F_ONLY, 0.004, 0.07, &["904419"]),      // Osteoporosis
    ch("26929004", (60.0, 110.0), BOTH, 0.0006, 0.12, &["996740"]),       // Alzheimer's disease
    ch("80583007", (15.0, 110.0), (1.4, 0.6), 0.003, -0.01, &["312938"]), // Severe anxiety (panic)
    ch("370143000", (15.0, 110.0), (1.4, 0.6), 0.003, -0.01, &["312938"]), // Major depression disorder
    ch("128613002", (0.0, 110.0), BOTH, 0.0005, 0.0, &["308971"]),        // Seizure disorder
    ch("446096008", (2.0, 110.0), BOTH, 0.003, -0.02, &["665078"]),       // Perennial allergic rhinitis
    ch("127013003", (40.0, 110.0), BOTH, 0.001, 0.04, &[]),               // Disorder of kidney due to diabetes mellitus
    ch("368581000119106", (40.0, 110.0), BOTH, 0.001, 0.04, &["310431"]), // Neuropathy due to type 2 diabetes mellitus
    ch("254837009", (35.0, 110.0), F_ONLY, 0.0015, 0.03, &["198240"]),    // Malignant neoplasm of breast
    ch("126906006", (50.0, 110.0), M_ONLY, 0.002, 0.06, &[]),             // Neoplasm of prostate
    ch("363406005", (45.0, 110.0), BOTH, 0.0006, 0.05, &[]),              // Malignant neoplasm of colon
    Chronic { emergency: true, ..ch("230690007", (45.0, 110.0), BOTH, 0.001, 0.08, &["309362"]) }, // Cerebrovascular accident
    Chronic { emergency: true, ..ch("399211009", (45.0, 110.0), (0.6, 1.4), 0.0015, 0.07, &["309362", "705129"]) }, // History of myocardial infarction
    ch("68496003", (45.0, 110.0), BOTH, 0.003, 0.03, &[]), // Polyp of colon
    ch("10939881000119105", (18.0, 110.0), (0.6, 1.4), 0.003, -0.02, &[]), // Unhealthy alcohol drinking behavior
];
const ASTHMA: usize = 7;

/// Acute conditions: chosen by weight among those whose age and sex fit; resolved after a
/// number of days in `days` (STOP).
struct Acute {
    code: &'static str,
    ages: (f64, f64),
    sex: (f64, f64),
    weight: f64,
    days: (i64, i64),
    meds: &'static [&'static str],
    kind: AcuteKind,
}
#[derive(Clone, Copy, PartialEq, Eq)]
enum AcuteKind {
    Illness,
    /// Three times as likely at emergency and urgent care.
    Injury,
    /// Mostly at emergency and inpatient encounters.
    Serious,
}
const fn ac(
    code: &'static str,
    ages: (f64, f64),
    weight: f64,
    days: (i64, i64),
    meds: &'static [&'static str],
) -> Acute {
    Acute { code, ages, sex: BOTH, weight, days, meds, kind: AcuteKind::Illness }
}
const fn inj(
    code: &'static str,
    ages: (f64, f64),
    weight: f64,
    days: (i64, i64),
    meds: &'static [&'static str],
) -> Acute {
    Acute { code, ages, sex: BOTH, weight, days, meds, kind: AcuteKind::Injury }
}
const ALL: (f64, f64) = (0.0, 120.0);

const ACUTE: [Acute; 38] = [
    ac("444814009", ALL, 10.0, (7, 21), &["198440"]), // Viral sinusitis
    ac("195662009", ALL, 10.0, (7, 14), &["198440", "313820"]), // Acute viral pharyngitis
    ac("10509002", ALL, 6.0, (7, 21), &["1043400"]),  // Acute bronchitis
    ac("65363002", (0.0, 12.0), 8.0, (7, 21), &["308192", "313820"]), // Otitis media
    ac("43878008", (3.0, 40.0), 4.0, (7, 14), &["834061", "308192"]), // Streptococcal sore throat
    ac("75498004", (3.0, 120.0), 3.0, (10, 21), &["562251"]), // Acute bacterial sinusitis
    Acute { sex: F_ONLY, ..ac("38822007", (15.0, 120.0), 3.0, (5, 10), &["311989"]) }, // Cystitis
    Acute { sex: (1.0, 0.1), ..ac("301011002", ALL, 1.0, (7, 14), &["311989"]) }, // Escherichia coli urinary tract infection
    ac("840544004", ALL, 3.0, (1, 5), &[]),                                       // Suspected COVID-19
    ac("840539006", ALL, 2.5, (10, 30), &["198440"]),                             // COVID-19
    ac("386661006", ALL, 3.0, (1, 7), &["198440", "313820"]),                     // Fever
    ac("49727002", ALL, 3.0, (7, 21), &["1043400"]),                              // Cough
    ac("267102003", ALL, 2.0, (3, 10), &[]),                                      // Sore throat symptom
    ac("36955009", ALL, 0.8, (14, 60), &[]),                                      // Loss of taste
    ac("84229001", ALL, 1.0, (14, 60), &[]),                                      // Fatigue
    ac("267036007", ALL, 1.0, (7, 30), &[]),                                      // Dyspnea
    ac("56018004", ALL, 1.0, (7, 21), &["630208"]),                               // Wheezing
    ac("422587007", ALL, 1.0, (1, 5), &[]),                                       // Nausea
    ac("249497008", ALL, 1.0, (1, 5), &[]),                                       // Vomiting symptom
    ac("241929008", ALL, 1.0, (1, 7), &["1870230"]),                              // Acute allergic reaction
    ac("196416002", (16.0, 30.0), 0.5, (7, 30), &["206905"]),                     // Impacted molars
    Acute { kind: AcuteKind::Serious, ..ac("91302008", (50.0, 120.0), 0.5, (14, 45), &["308192"]) }, // Sepsis
    Acute { kind: AcuteKind::Serious, ..ac("74400008", (5.0, 60.0), 0.4, (14, 45), &[]) }, // Appendicitis
    inj("384709000", ALL, 4.0, (14, 42), &["206905", "310965"]),                  // Sprain
    inj("44465007", ALL, 3.0, (14, 42), &["310965"]),                             // Sprain of ankle
    inj("70704007", ALL, 2.0, (14, 42), &["310965"]),                             // Sprain of wrist
    inj("312608009", ALL, 3.0, (7, 21), &["313782"]),                             // Laceration - injury
    inj("284549007", ALL, 2.0, (7, 21), &[]),                                     // Laceration of hand
    inj("283371005", ALL, 1.5, (7, 21), &[]),                                     // Laceration of forearm
    inj("284551006", ALL, 1.0, (7, 21), &[]),                                     // Laceration of foot
    inj("125605004", ALL, 1.5, (42, 90), &["1049221"]),                           // Fracture of bone
    inj("263102004", ALL, 1.0, (42, 90), &["1049221"]),                           // Fracture subluxation of wrist
    inj("16114001", ALL, 1.0, (42, 90), &["1049221"]),                            // Fracture of ankle
    inj("58150001", ALL, 0.7, (42, 90), &["856987"]),                             // Fracture of clavicle
    inj("62106007", ALL, 1.0, (14, 42), &[]), // Concussion with no loss of consciousness
    inj("110030002", ALL, 0.7, (14, 60), &[]), // Concussion injury of brain
    inj("39848009", (16.0, 120.0), 1.0, (14, 60), &["849574"]), // Whiplash injury to neck
    inj("48333001", ALL, 0.7, (14, 42), &[]), // Burn injury
];

/// Social findings recorded at adults' wellness visits (STOP at about the next one).
const FINDINGS: [(&str, f64); 18] = [
    ("160903007", 6.0),     // Full-time employment
    ("160904001", 2.0),     // Part-time employment
    ("741062008", 2.0),     // Not in labor force
    ("73438004", 0.7),      // Unemployed
    ("73595000", 5.0),      // Stress
    ("423315002", 2.0),     // Limited social contact
    ("422650009", 1.5),     // Social isolation
    ("706893006", 0.8),     // Victim of intimate partner abuse
    ("424393004", 0.6),     // Reports of violence in the environment
    ("224299000", 0.6),     // Received higher education
    ("224295006", 0.3),     // Only received primary school education
    ("5251000175109", 0.3), // Received certificate of high school equivalency
    ("160968000", 0.5),     // Risk activity involvement
    ("266948004", 0.3),     // Has a criminal record
    ("361055000", 0.15),    // Misuses drugs
    ("105531004", 0.15),    // Housing unsatisfactory
    ("713458007", 0.1),     // Lack of access to transportation
    ("32911000", 0.05),     // Homeless
];
const MEDICATION_REVIEW_DUE: &str = "314529007";
const NORMAL_PREGNANCY: &str = "72892002";
const MISCARRIAGE: &str = "19169002";
const COMPLETE_MISCARRIAGE: &str = "156073000";
const PREECLAMPSIA: &str = "398254007";
const ECLAMPSIA: &str = "198992004";
const TUBAL_LIGATION: &str = "267020005";
const PREGNANCY_CODES: [&str; 6] =
    [NORMAL_PREGNANCY, MISCARRIAGE, COMPLETE_MISCARRIAGE, PREECLAMPSIA, ECLAMPSIA, TUBAL_LIGATION];

/// Oral contraceptives prescribed at women's wellness visits.
const CONTRACEPTIVES: [&str; 4] = ["757594", "748962", "751905", "748856"]; // Jolivette, Camila, Trinessa, Yaz
/// Injections renewed monthly (one dispense per course).
const MONTHLY: [&str; 2] = ["205923", "1719286"]; // Epoetin alfa (Epogen), furosemide injection

const COUNTIES: [(&str, f64); 24] = [
    ("Douglas County", 584.0),
    ("Lancaster County", 322.0),
    ("Sarpy County", 190.0),
    ("Hall County", 62.0),
    ("Buffalo County", 50.0),
    ("Dodge County", 37.0),
    ("Scotts Bluff County", 36.0),
    ("Madison County", 35.0),
    ("Platte County", 34.0),
    ("Lincoln County", 34.0),
    ("Adams County", 31.0),
    ("Cass County", 27.0),
    ("Dawson County", 24.0),
    ("Saunders County", 22.0),
    ("Gage County", 22.0),
    ("Washington County", 21.0),
    ("Dakota County", 21.0),
    ("Seward County", 17.0),
    ("Otoe County", 16.0),
    ("York County", 14.0),
    ("Saline County", 14.0),
    ("Custer County", 11.0),
    ("Keith County", 8.0),
    ("Stanton County", 6.0),
];
const RACES: [(&str, f64); 6] =
    [("white", 0.80), ("black", 0.06), ("asian", 0.03), ("native", 0.01), ("hawaiian", 0.002), ("other", 0.098)];
const MARITAL: [&str; 4] = ["M", "S", "D", "W"];

const FIRST_F: [&str; 24] = [
    "Alice", "Mary", "Linda", "Susan", "Karen", "Nancy", "Betty", "Helen", "Sandra", "Donna", "Carol", "Ruth",
    "Sharon", "Michelle", "Laura", "Sarah", "Kimberly", "Deborah", "Jessica", "Shirley", "Cynthia", "Angela",
    "Melissa", "Brenda",
];
const FIRST_M: [&str; 24] = [
    "James",
    "John",
    "Robert",
    "Michael",
    "William",
    "David",
    "Richard",
    "Joseph",
    "Thomas",
    "Charles",
    "Christopher",
    "Daniel",
    "Matthew",
    "Anthony",
    "Donald",
    "Mark",
    "Paul",
    "Steven",
    "Andrew",
    "Kenneth",
    "Joshua",
    "Kevin",
    "Brian",
    "George",
];
const LAST: [&str; 32] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Garcia",
    "Rodriguez",
    "Wilson",
    "Martinez",
    "Anderson",
    "Taylor",
    "Thomas",
    "Hernandez",
    "Moore",
    "Martin",
    "Jackson",
    "Thompson",
    "White",
    "Lopez",
    "Lee",
    "Gonzalez",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Perez",
    "Hall",
    "Gleason",
    "Kohler",
];
const STREETS: [&str; 16] = [
    "Kohler",
    "Kunde",
    "Oak",
    "Maple",
    "Cedar",
    "Pine",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Main",
    "Ridge",
    "Walnut",
    "Spruce",
    "Sunset",
];
const STREET_KINDS: [&str; 8] = ["Street", "Avenue", "Road", "Camp", "Burg", "Lane", "Court", "Drive"];

/// Codes of a table's CODE column: each listed once, in first-seen order.
fn unique(codes: impl IntoIterator<Item = &'static str>) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = vec![];
    for c in codes {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn encounter_codes() -> Vec<&'static str> {
    use enc::*;
    let fixed = [
        WELL_CHILD,
        GENERAL_EXAM,
        DEATH_CERT,
        FOLLOW_UP,
        ASTHMA_FOLLOW_UP,
        PRENATAL_INITIAL,
        PRENATAL,
        POSTNATAL,
        OBSTETRIC_ADMISSION,
        ASTHMA_ADMISSION,
        URGENT_CARE,
        SNF,
        HOSPICE,
        HOME,
    ];
    unique(fixed.into_iter().chain(
        [AMBULATORY.as_slice(), &OUTPATIENT, &EMERGENCY, &INPATIENT, &VIRTUAL].into_iter().flatten().map(|(c, _)| *c),
    ))
}

fn condition_codes() -> Vec<&'static str> {
    unique(
        CHRONIC
            .iter()
            .map(|c| c.code)
            .chain(ACUTE.iter().map(|a| a.code))
            .chain(FINDINGS.iter().map(|f| f.0))
            .chain([MEDICATION_REVIEW_DUE])
            .chain(PREGNANCY_CODES),
    )
}

fn medication_codes() -> Vec<&'static str> {
    unique(
        CHRONIC
            .iter()
            .flat_map(|c| c.meds.iter().copied())
            .chain(ACUTE.iter().flat_map(|a| a.meds.iter().copied()))
            .chain(CONTRACEPTIVES),
    )
}

// ---------------------------------------------------------------------------------------------
// Writing: hand-rolled formatting, since tens of millions of dates dominate the generator.

/// Civil date of a day number (days since 1970-01-01), after H. Hinnant's algorithm.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

fn put_digits(b: &mut Vec<u8>, v: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = tmp.len();
    let mut v = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while tmp.len() - i < width {
        i -= 1;
    }
    b.extend_from_slice(&tmp[i..]);
}

fn put_date(b: &mut Vec<u8>, day: i64) {
    let (y, m, d) = civil(day);
    put_digits(b, y as u64, 4);
    b.push(b'-');
    put_digits(b, m as u64, 2);
    b.push(b'-');
    put_digits(b, d as u64, 2);
}

fn put_datetime(b: &mut Vec<u8>, secs: i64) {
    put_date(b, secs.div_euclid(DAY));
    let s = secs.rem_euclid(DAY) as u64;
    b.push(b'T');
    put_digits(b, s / 3600, 2);
    b.push(b':');
    put_digits(b, s / 60 % 60, 2);
    b.push(b':');
    put_digits(b, s % 60, 2);
    b.push(b'Z');
}

type Uuid = [u8; 36];

fn uuid(rng: &mut StdRng) -> Uuid {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bits: u128 = rng.random();
    let mut out = [b'-'; 36];
    for (i, slot) in out.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        *slot = match i {
            14 => b'4', // version 4 (random)
            _ => {
                let h = HEX[(bits & 15) as usize];
                bits >>= 4;
                h
            }
        };
    }
    out
}

fn pick(rng: &mut StdRng, weights: impl Iterator<Item = f64> + Clone) -> usize {
    let total: f64 = weights.clone().sum();
    let mut x = rng.random::<f64>() * total;
    let mut last = 0;
    for (i, w) in weights.enumerate() {
        if w > 0.0 {
            last = i;
            if x < w {
                return i;
            }
            x -= w;
        }
    }
    last
}

fn pick_code(rng: &mut StdRng, list: &[(&'static str, f64)]) -> &'static str {
    list[pick(rng, list.iter().map(|x| x.1))].0
}

// ---------------------------------------------------------------------------------------------
// One person's life.

#[derive(Clone, Copy)]
enum Visit {
    Regular,
    Onset(usize),
    PrenatalInitial { end_day: i64 },
    Prenatal,
    Miscarriage,
    Delivery,
    Postnatal { tubal: bool },
    Hospice,
    DeathCert,
}

#[derive(Default)]
struct Out {
    patients: Vec<u8>,
    encounters: Vec<u8>,
    conditions: Vec<u8>,
    medications: Vec<u8>,
    rows: [u64; 4],
}

/// A medication course that is renewed at later visits while the condition lasts.
struct Course {
    code: &'static str,
    ends: i64,
}

struct Person {
    id: Uuid,
    birth: i64,
    female: bool,
    /// Exclusive end of the history in seconds: the day after death, or the reference date.
    end: i64,
    dead: bool,
}

fn person(seed: u64, index: u64, out: &mut Out) {
    // One generator per person: the files do not depend on how persons are spread over threads.
    let mut rng = StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let rng = &mut rng;
    let female = rng.random_bool(0.51);
    // Age on the reference date: flat to 60, then thinning out to 105 (a population pyramid).
    let age_end = loop {
        let a = rng.random::<f64>() * 105.0;
        if a < 60.0 || rng.random::<f64>() < (105.0 - a) / 45.0 {
            break a;
        }
    };
    let birth = (END_DAY - (age_end * 365.25) as i64 - 1).max(MIN_BIRTH_DAY);
    let frailty = LogNormal::new(-0.25f64, 0.6).expect("valid log-normal").sample(rng).min(8.0);
    let id = uuid(rng);

    // Live year by year: chronic onsets, pregnancies, death; regular visits at an age- and
    // load-dependent Poisson rate.
    let mut visits: Vec<(i64, Visit)> = Vec::with_capacity(64);
    let mut has = [false; CHRONIC.len()];
    let mut n_chronic = 0usize;
    let mut busy_until = i64::MIN; // no new pregnancy before this day
    let mut births = 0u32;
    let mut sterile = false;
    let mut death: Option<i64> = None;
    let mut age = 0usize;
    loop {
        let y0 = birth + (age as f64 * 365.2425) as i64;
        if y0 >= END_DAY {
            break;
        }
        let y1 = (birth + ((age + 1) as f64 * 365.2425) as i64).min(END_DAY);
        let a = age as f64;
        let q = 0.000_02 * (0.095 * a).exp() * (1.0 + 0.1 * n_chronic as f64) + if age == 0 { 0.004 } else { 0.0 };
        let dies = rng.random_bool(q.min(0.6));
        // Events of the death year stop at the death day.
        let last = if dies { rng.random_range(y0..y1) } else { y1 - 1 };
        let span = (last - y0 + 1) as f64 / 365.2425;
        let day_in = |rng: &mut StdRng| rng.random_range(y0..=last);
        for (ci, c) in CHRONIC.iter().enumerate() {
            if has[ci] || a < c.ages.0 || a >= c.ages.1 {
                continue;
            }
            let sex = if female { c.sex.0 } else { c.sex.1 };
            let h = (c.h60 * (c.slope * (a - 60.0)).exp() * sex * frailty.sqrt()).min(0.3) * span;
            if rng.random_bool(h.min(1.0)) {
                has[ci] = true;
                n_chronic += 1;
                visits.push((day_in(rng) * DAY + rng.random_range(7 * 3600..18 * 3600), Visit::Onset(ci)));
            }
        }
        if female && !sterile && (15..45).contains(&age) {
            let p = if (20..35).contains(&age) { 0.07 } else { 0.03 };
            let t0 = day_in(rng);
            if t0 >= busy_until && rng.random_bool(p) {
                let at = |rng: &mut StdRng, day: i64| day * DAY + rng.random_range(8 * 3600..17 * 3600);
                let first = t0 + rng.random_range(42..70);
                if rng.random_bool(0.15) {
                    let m = t0 + rng.random_range(70..84);
                    visits.push((at(rng, first), Visit::PrenatalInitial { end_day: m }));
                    visits.push((at(rng, m), Visit::Miscarriage));
                    busy_until = m + 60;
                } else {
                    let due = t0 + rng.random_range(266..288);
                    visits.push((at(rng, first), Visit::PrenatalInitial { end_day: due }));
                    for week in [16, 20, 24, 28, 32, 34, 36, 38] {
                        let day = t0 + week * 7 + rng.random_range(-3..4);
                        visits.push((at(rng, day), Visit::Prenatal));
                    }
                    visits.push((due * DAY + rng.random_range(0..DAY), Visit::Delivery));
                    births += 1;
                    let tubal = births >= 2 && rng.random_bool(0.15);
                    sterile |= tubal;
                    visits.push((at(rng, due + 42), Visit::Postnatal { tubal }));
                    busy_until = due + 120;
                }
            }
        }
        let base = match age {
            0 => 6.0,
            1 => 3.0,
            2..18 => 0.8,
            18..40 => 0.7,
            40..65 => 1.1,
            65..80 => 1.8,
            _ => 2.5,
        };
        let rate = (base * frailty * (1.0 + 0.3 * n_chronic as f64)).min(24.0) * span;
        let n = Poisson::new(rate).map(|p| p.sample(rng) as usize).unwrap_or(0);
        for _ in 0..n {
            visits.push((day_in(rng) * DAY + rng.random_range(6 * 3600..22 * 3600), Visit::Regular));
        }
        if dies {
            if a >= 55.0 && n_chronic > 0 && rng.random_bool(0.5) {
                let d = (last - rng.random_range(7..90)).max(birth);
                visits.push((d * DAY + rng.random_range(8 * 3600..17 * 3600), Visit::Hospice));
            }
            // Last event of the day of death.
            visits.push((last * DAY + 23 * 3600 + rng.random_range(0..2700), Visit::DeathCert));
            death = Some(last);
            break;
        }
        age += 1;
    }
    let end = death.map_or(END_DAY * DAY, |d| (d + 1) * DAY);
    // Pregnancies planned in the last year may run past the end of the history.
    visits.retain(|v| v.0 < end && (death.is_none() || matches!(v.1, Visit::DeathCert) || v.0 < end - 3600));
    visits.sort_by_key(|v| v.0);
    let p = Person { id, birth, female, end, dead: death.is_some() };
    write_patient(rng, &p, death, age_end, out);
    play(rng, &p, &visits, out);
}

fn write_patient(rng: &mut StdRng, p: &Person, death: Option<i64>, age_end: f64, out: &mut Out) {
    let b = &mut out.patients;
    b.extend_from_slice(&p.id);
    b.push(b',');
    put_date(b, p.birth);
    b.push(b',');
    if let Some(d) = death {
        put_date(b, d);
    }
    // Fake direct identifiers in Synthea's style (999 SSN area, digits appended to names).
    let _ = write!(b, ",999-{:02}-{:04},", rng.random_range(10..100u32), rng.random_range(0..10_000u32));
    let first = if p.female {
        FIRST_F[rng.random_range(0..FIRST_F.len())]
    } else {
        FIRST_M[rng.random_range(0..FIRST_M.len())]
    };
    let _ = write!(
        b,
        "{first}{},{}{},",
        rng.random_range(1..1000u32),
        LAST[rng.random_range(0..LAST.len())],
        rng.random_range(1..1000u32)
    );
    b.extend_from_slice(RACES[pick(rng, RACES.iter().map(|r| r.1))].0.as_bytes());
    b.push(b',');
    b.extend_from_slice(if rng.random_bool(0.12) { b"hispanic" } else { b"nonhispanic" });
    b.push(b',');
    b.push(if p.female { b'F' } else { b'M' });
    let _ = write!(
        b,
        ",{} {} {}",
        rng.random_range(1..2000u32),
        STREETS[rng.random_range(0..STREETS.len())],
        STREET_KINDS[rng.random_range(0..STREET_KINDS.len())]
    );
    if rng.random_bool(0.2) {
        let _ = write!(b, " Apt {}", rng.random_range(1..100u32));
    }
    b.push(b',');
    let age = death.map_or(age_end, |d| (d - p.birth) as f64 / 365.25);
    if age >= 18.0 {
        let w = [0.5, (0.6 - age / 150.0).max(0.1), 0.12, ((age - 55.0) / 100.0).max(0.0)];
        b.extend_from_slice(MARITAL[pick(rng, w.into_iter())].as_bytes());
    }
    b.push(b',');
    let county = pick(rng, COUNTIES.iter().map(|c| c.1));
    b.extend_from_slice(COUNTIES[county].0.as_bytes());
    // Household income: higher in the three metropolitan counties.
    let mu = (55_000f64).ln() + if county < 3 { 0.15 } else { -0.05 };
    let income = LogNormal::new(mu, 0.6).expect("valid log-normal").sample(rng).clamp(5_000.0, 900_000.0);
    let _ = writeln!(b, ",{}", income as u64);
    out.rows[0] += 1;
}

/// Play the visits in time order: encounters, with the conditions and medications they record.
fn play(rng: &mut StdRng, p: &Person, visits: &[(i64, Visit)], out: &mut Out) {
    let mut chronic: Vec<usize> = vec![];
    let mut courses: Vec<Course> = vec![];
    let mut contraceptive_until = i64::MIN;
    let mut pregnant_until = i64::MIN;
    let cost_factor = LogNormal::new(0.0, 0.15).expect("valid log-normal");
    for &(t, visit) in visits {
        let age = (t.div_euclid(DAY) - p.birth) as f64 / 365.25;
        let class = match visit {
            Visit::Regular => regular_class(rng, age, chronic.len()),
            Visit::Onset(ci) if CHRONIC[ci].emergency => Class::Emergency,
            Visit::Onset(_)
            | Visit::PrenatalInitial { .. }
            | Visit::Prenatal
            | Visit::Miscarriage
            | Visit::Postnatal { .. } => Class::Ambulatory,
            Visit::Delivery => Class::Emergency,
            Visit::Hospice => Class::Hospice,
            Visit::DeathCert => Class::Wellness,
        };
        let has_asthma = chronic.contains(&ASTHMA);
        let code = match visit {
            Visit::Onset(_) if class == Class::Emergency => enc::ER_ADMISSION,
            Visit::Onset(_) | Visit::Miscarriage => enc::PROBLEM,
            Visit::PrenatalInitial { .. } => enc::PRENATAL_INITIAL,
            Visit::Prenatal => enc::PRENATAL,
            Visit::Postnatal { .. } => enc::POSTNATAL,
            Visit::Delivery => enc::OBSTETRIC_ADMISSION,
            Visit::Hospice => enc::HOSPICE,
            Visit::DeathCert => enc::DEATH_CERT,
            Visit::Regular => match class {
                Class::Wellness if age < 18.0 => enc::WELL_CHILD,
                Class::Wellness => enc::GENERAL_EXAM,
                Class::Ambulatory if has_asthma && rng.random_bool(0.2) => enc::ASTHMA_FOLLOW_UP,
                Class::Ambulatory if !chronic.is_empty() && rng.random_bool(0.4) => enc::FOLLOW_UP,
                Class::Ambulatory => pick_code(rng, &enc::AMBULATORY),
                Class::Outpatient => {
                    let w = enc::OUTPATIENT.map(|(c, w)| (c, if c == "33879002" && age < 18.0 { w * 6.0 } else { w }));
                    pick_code(rng, &w)
                }
                Class::Urgentcare => enc::URGENT_CARE,
                Class::Emergency if has_asthma && rng.random_bool(0.2) => enc::ASTHMA_ADMISSION,
                Class::Emergency => pick_code(rng, &enc::EMERGENCY),
                Class::Inpatient => pick_code(rng, &enc::INPATIENT),
                Class::Snf => enc::SNF,
                Class::Hospice => enc::HOSPICE,
                Class::Home => enc::HOME,
                Class::Virtual => pick_code(rng, &enc::VIRTUAL),
            },
        };
        let minutes: i64 = match (visit, class) {
            (Visit::DeathCert, _) => 15,
            (Visit::Delivery, _) => rng.random_range(1..4) * 1440,
            (Visit::Hospice, _) => (p.end - t) / 60, // until death
            (_, Class::Wellness) => {
                if rng.random_bool(0.9) {
                    15
                } else {
                    30
                }
            }
            (_, Class::Ambulatory) => 15 * rng.random_range(1..5),
            (_, Class::Outpatient) => 15 * rng.random_range(1..9),
            (_, Class::Urgentcare) => 15 * rng.random_range(1..7),
            (_, Class::Emergency) => {
                (60.0 * LogNormal::new(1.1f64, 0.6).expect("valid").sample(rng)).clamp(30.0, 1440.0) as i64
            }
            (_, Class::Inpatient) => {
                (1440.0 * LogNormal::new(1.1f64, 0.7).expect("valid").sample(rng)).clamp(1440.0, 43_200.0) as i64
            }
            (_, Class::Snf) => 1440 * rng.random_range(7..91),
            (_, Class::Hospice) => 1440 * rng.random_range(7..91),
            (_, Class::Home) => 15 * rng.random_range(2..7),
            (_, Class::Virtual) => 5 * rng.random_range(2..7),
        };
        // STOP >= START, and nothing after death (or after the reference date).
        let stop = (t + minutes * 60).min(p.end - 1).max(t);
        let eid = uuid(rng);
        let ci = CLASS_OF.iter().position(|c| *c == class).unwrap_or(0);
        let cents = (enc::BASE_COST[ci] * cost_factor.sample(rng) * 100.0).round() as u64;
        let b = &mut out.encounters;
        b.extend_from_slice(&eid);
        b.push(b',');
        put_datetime(b, t);
        b.push(b',');
        put_datetime(b, stop);
        b.push(b',');
        b.extend_from_slice(&p.id);
        b.push(b',');
        b.extend_from_slice(CLASSES[ci].as_bytes());
        b.push(b',');
        b.extend_from_slice(code.as_bytes());
        b.push(b',');
        put_digits(b, cents / 100, 1);
        b.push(b'.');
        put_digits(b, cents % 100, 2);
        b.push(b'\n');
        out.rows[1] += 1;

        let mut rec = Recorder { p, t, eid: &eid, out };
        match visit {
            Visit::Onset(ci) => {
                chronic.push(ci);
                rec.condition(CHRONIC[ci].code, None);
                if !CHRONIC[ci].meds.is_empty() && rng.random_bool(0.7) {
                    let code = CHRONIC[ci].meds[rng.random_range(0..CHRONIC[ci].meds.len())];
                    if !courses.iter().any(|c| c.code == code) {
                        courses.push(Course { code, ends: i64::MIN });
                    }
                }
            }
            Visit::PrenatalInitial { end_day } => {
                rec.condition(NORMAL_PREGNANCY, Some(end_day));
                pregnant_until = end_day * DAY;
            }
            Visit::Prenatal if rng.random_bool(0.006) => {
                rec.condition(
                    if rng.random_bool(0.2) { ECLAMPSIA } else { PREECLAMPSIA },
                    Some(pregnant_until.div_euclid(DAY)),
                );
            }
            Visit::Miscarriage => {
                rec.condition(MISCARRIAGE, Some(t.div_euclid(DAY) + rng.random_range(7..22)));
                if rng.random_bool(0.3) {
                    rec.condition(COMPLETE_MISCARRIAGE, Some(t.div_euclid(DAY) + rng.random_range(7..22)));
                }
            }
            Visit::Postnatal { tubal: true } => rec.condition(TUBAL_LIGATION, None),
            Visit::Regular => {
                let p_acute = match class {
                    Class::Urgentcare => 0.85,
                    Class::Emergency => 0.7,
                    Class::Inpatient => 0.4,
                    Class::Ambulatory if code == enc::PROBLEM || code == enc::SYMPTOM => 0.6,
                    Class::Virtual => 0.4,
                    Class::Outpatient => 0.1,
                    Class::Wellness => 0.05,
                    _ => 0.0,
                };
                if rng.random_bool(p_acute) {
                    let urgent = matches!(class, Class::Emergency | Class::Urgentcare);
                    let hospital = matches!(class, Class::Emergency | Class::Inpatient);
                    let w = ACUTE.iter().map(|a| {
                        let fits = age >= a.ages.0 && age < a.ages.1;
                        let sex = if p.female { a.sex.0 } else { a.sex.1 };
                        let setting = match a.kind {
                            AcuteKind::Illness => 1.0,
                            AcuteKind::Injury if urgent => 3.0,
                            AcuteKind::Injury => 1.0,
                            AcuteKind::Serious if hospital => 30.0,
                            AcuteKind::Serious => 0.1,
                        };
                        if fits { a.weight * sex * setting } else { 0.0 }
                    });
                    let a = &ACUTE[pick(rng, w)];
                    let days = rng.random_range(a.days.0..=a.days.1);
                    rec.condition(a.code, Some(t.div_euclid(DAY) + days));
                    if !a.meds.is_empty() && rng.random_bool(0.6) {
                        let code = a.meds[rng.random_range(0..a.meds.len())];
                        rec.medication(code, t + days * DAY, if rng.random_bool(0.1) { 2 } else { 1 });
                    }
                }
                if class == Class::Wellness && (18.0..65.0).contains(&age) {
                    for p_find in [0.6, 0.25] {
                        if rng.random_bool(p_find) {
                            rec.condition(
                                pick_code(rng, &FINDINGS),
                                Some(t.div_euclid(DAY) + rng.random_range(300..420)),
                            );
                        }
                    }
                }
                if class == Class::Wellness && !courses.is_empty() && rng.random_bool(0.8) {
                    rec.condition(MEDICATION_REVIEW_DUE, Some(t.div_euclid(DAY) + rng.random_range(90..366)));
                }
                if class == Class::Wellness
                    && p.female
                    && (15.0..45.0).contains(&age)
                    && t > contraceptive_until
                    && t > pregnant_until
                    && rng.random_bool(0.35)
                {
                    rec.medication(CONTRACEPTIVES[rng.random_range(0..CONTRACEPTIVES.len())], t + 360 * DAY, 12);
                    contraceptive_until = t + 360 * DAY;
                }
            }
            _ => {}
        }
        // Chronic medications are renewed at visits where the current supply runs out within a
        // month (heavy users of care thus get long medication histories).
        if !matches!(visit, Visit::DeathCert | Visit::Delivery) {
            for c in courses.iter_mut() {
                if c.ends <= t + 30 * DAY {
                    let months = if MONTHLY.contains(&c.code) {
                        1
                    } else {
                        [1, 3, 6, 12][pick(rng, [0.3, 0.35, 0.2, 0.15].into_iter())]
                    };
                    c.ends = t + months * 30 * DAY;
                    rec.medication(c.code, c.ends, months as u64);
                }
            }
        }
    }
}

/// Writes the condition and medication rows of one encounter.
struct Recorder<'a> {
    p: &'a Person,
    t: i64,
    eid: &'a Uuid,
    out: &'a mut Out,
}

impl Recorder<'_> {
    /// STOP is empty for a chronic condition, or when the condition is still active at the
    /// reference date; it is never after death.
    fn condition(&mut self, code: &str, stop_day: Option<i64>) {
        let b = &mut self.out.conditions;
        let start = self.t.div_euclid(DAY);
        put_date(b, start);
        b.push(b',');
        if let Some(s) = stop_day {
            let last = (self.p.end - 1).div_euclid(DAY);
            if s <= last || self.p.dead {
                put_date(b, s.min(last).max(start));
            }
        }
        b.push(b',');
        b.extend_from_slice(&self.p.id);
        b.push(b',');
        b.extend_from_slice(self.eid);
        b.push(b',');
        b.extend_from_slice(code.as_bytes());
        b.push(b'\n');
        self.out.rows[2] += 1;
    }

    fn medication(&mut self, code: &str, stop: i64, dispenses: u64) {
        let b = &mut self.out.medications;
        put_datetime(b, self.t);
        b.push(b',');
        if stop < self.p.end || self.p.dead {
            put_datetime(b, stop.min(self.p.end - 1).max(self.t));
        }
        b.push(b',');
        b.extend_from_slice(&self.p.id);
        b.push(b',');
        b.extend_from_slice(self.eid);
        b.push(b',');
        b.extend_from_slice(code.as_bytes());
        b.push(b',');
        put_digits(b, dispenses, 1);
        b.push(b'\n');
        self.out.rows[3] += 1;
    }
}

/// Encounter class of a regular visit: children see wellness visits most, the old and the
/// chronically ill ambulatory and hospital care.
fn regular_class(rng: &mut StdRng, age: f64, n_chronic: usize) -> Class {
    // Order of CLASSES: ambulatory, wellness, outpatient, urgentcare, emergency, inpatient, snf,
    // hospice, home, virtual.
    let mut w: [f64; 10] = if age < 18.0 {
        [0.25, 0.45, 0.10, 0.12, 0.06, 0.01, 0.0, 0.0, 0.0, 0.01]
    } else if age < 65.0 {
        [0.38, 0.25, 0.17, 0.10, 0.06, 0.02, 0.0, 0.0, 0.0, 0.02]
    } else {
        [0.45, 0.15, 0.18, 0.06, 0.07, 0.05, 0.03, 0.0, 0.01, 0.01]
    };
    w[0] += 0.2 * n_chronic as f64;
    CLASS_OF[pick(rng, w.into_iter())]
}

// ---------------------------------------------------------------------------------------------
// The generator's entry point and the schema.

const TABLES: [&str; 4] = ["patients", "encounters", "conditions", "medications"];
const HEADERS: [&str; 4] = [
    "Id,BIRTHDATE,DEATHDATE,SSN,FIRST,LAST,RACE,ETHNICITY,GENDER,ADDRESS,MARITAL,COUNTY,INCOME",
    "Id,START,STOP,PATIENT,ENCOUNTERCLASS,CODE,BASE_ENCOUNTER_COST",
    "START,STOP,PATIENT,ENCOUNTER,CODE",
    "START,STOP,PATIENT,ENCOUNTER,CODE,DISPENSES",
];

struct Generated {
    rows: [u64; 4],
    bytes: [u64; 4],
    seconds: f64,
}

fn generate(persons: u64, dir: &Path, seed: u64, progress: bool) -> Result<Generated, String> {
    let t0 = Instant::now();
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let schema_path = dir.join("schema.yaml");
    std::fs::write(&schema_path, schema_yaml(persons, seed))
        .map_err(|e| format!("cannot write {}: {e}", schema_path.display()))?;
    let mut files = Vec::with_capacity(4);
    for (t, h) in TABLES.iter().zip(HEADERS) {
        let path = dir.join(format!("{t}.csv"));
        let f = std::fs::File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut w = BufWriter::with_capacity(1 << 22, f);
        writeln!(w, "{h}").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        files.push((path, w));
    }
    let mut rows = [0u64; 4];
    // Blocks of persons generated in parallel and written in order: memory stays bounded by a
    // block whatever the number of persons.
    const BLOCK: u64 = 8192;
    const CHUNK: u64 = 256;
    let mut start = 0;
    let mut next_report = Instant::now();
    while start < persons {
        let end = (start + BLOCK).min(persons);
        let outs: Vec<Out> = (start..end)
            .step_by(CHUNK as usize)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|c| {
                let mut out = Out::default();
                for i in c..(c + CHUNK).min(end) {
                    person(seed, i, &mut out);
                }
                out
            })
            .collect();
        for out in outs {
            for (k, buf) in [&out.patients, &out.encounters, &out.conditions, &out.medications].into_iter().enumerate()
            {
                let (path, w) = &mut files[k];
                w.write_all(buf).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                rows[k] += out.rows[k];
            }
        }
        start = end;
        if progress && next_report.elapsed().as_secs() >= 10 {
            eprintln!("  {start} of {persons} persons, {:.0} s", t0.elapsed().as_secs_f64());
            next_report = Instant::now();
        }
    }
    let mut bytes = [0u64; 4];
    for (k, (path, mut w)) in files.into_iter().enumerate() {
        w.flush().map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        bytes[k] = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    }
    Ok(Generated { rows, bytes, seconds: t0.elapsed().as_secs_f64() })
}

fn quoted(codes: &[&str]) -> String {
    codes.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
}

fn schema_yaml(persons: u64, seed: u64) -> String {
    let counties: Vec<&str> = COUNTIES.iter().map(|c| c.0).collect();
    let races: Vec<&str> = RACES.iter().map(|r| r.0).collect();
    format!(
        r#"# Public schema of the EHR-shaped benchmark data (benchmarks/ehr.rs: {persons} persons, seed {seed}).
# Every domain is public by construction: the generator's own code lists and bounds, never read
# from the data. Keys and direct identifiers are identifiers: never modelled, regenerated.
version: 1
person: {{table: patients, key: Id, birth: BIRTHDATE, death: DEATHDATE}}
tables:
  - name: patients
    description: One row per synthetic person (Synthea-like demographics, fake identifiers).
    primary_key: Id
    columns:
      - {{name: Id, type: identifier, role: identifier, fake: uuid}}
      - name: BIRTHDATE
        type: date
        role: quasi_identifier
        out_of_domain: clip
        domain: {{bounds: ["1920-01-01", "2024-12-31"], bins: 21, source: public}}
      - name: DEATHDATE
        type: date
        role: quasi_identifier
        nullable: true
        out_of_domain: clip
        description: Empty for people alive on 2025-01-01; no event is dated after it.
        domain: {{bounds: ["1920-01-01", "2024-12-31"], granularity: year, source: public}}
      - {{name: SSN, type: identifier, role: identifier, fake: ssn}}
      - {{name: FIRST, type: identifier, role: identifier, fake: first_name}}
      - {{name: LAST, type: identifier, role: identifier, fake: last_name}}
      - name: RACE
        type: categorical
        role: quasi_identifier
        domain: {{categories: [{races}], source: public}}
      - name: ETHNICITY
        type: categorical
        role: quasi_identifier
        domain: {{categories: ["hispanic", "nonhispanic"], source: public}}
      - name: GENDER
        type: categorical
        role: quasi_identifier
        domain: {{categories: ["F", "M"], source: public}}
      - {{name: ADDRESS, type: identifier, role: identifier, fake: address}}
      - name: MARITAL
        type: categorical
        nullable: true
        description: Empty for people under 18.
        domain: {{categories: ["M", "S", "D", "W"], source: public}}
      - name: COUNTY
        type: categorical
        role: quasi_identifier
        domain: {{categories: [{counties}], source: public}}
      - name: INCOME
        type: integer
        role: sensitive
        unit: USD per year
        out_of_domain: clip
        domain: {{bounds: [0, 1000000], edges: [0, 10000, 20000, 30000, 40000, 50000, 60000, 75000, 100000, 150000, 200000, 300000, 1000000], source: public}}

  - name: encounters
    description: Visits; STOP >= START, none before birth or after death.
    primary_key: Id
    foreign_keys: [{{column: PATIENT, references: patients}}]
    events:
      rows_per_person: 64
      time: START
      end: STOP
      duration: {{bounds: [0, 43200], edges: [0, 15, 30, 60, 120, 240, 480, 1440, 4320, 10080, 43200], source: public}}
      duration_unit: minutes
      person_columns: [GENDER, BIRTHDATE]
      summarise: [ENCOUNTERCLASS]
    columns:
      - {{name: Id, type: identifier, role: identifier, fake: uuid}}
      - name: START
        type: datetime
        out_of_domain: clip
        domain: {{bounds: ["1920-01-01T00:00:00", "2024-12-31T23:59:59"], granularity: year, source: public}}
      - name: STOP
        type: datetime
        out_of_domain: clip
        domain: {{bounds: ["1920-01-01T00:00:00", "2025-12-31T23:59:59"], granularity: year, source: public}}
      - {{name: PATIENT, type: identifier, role: identifier}}
      - name: ENCOUNTERCLASS
        type: categorical
        domain: {{categories: [{classes}], source: public}}
      - name: CODE
        type: categorical
        description: SNOMED CT encounter type.
        domain: {{categories: [{enc_codes}], source: public}}
      - name: BASE_ENCOUNTER_COST
        type: float
        unit: USD
        precision: 2
        out_of_domain: clip
        domain: {{bounds: [0, 1000], edges: [0, 50, 75, 100, 125, 150, 200, 300, 1000], source: public}}

  - name: conditions
    description: Diagnoses and findings, each recorded at one of the person's encounters.
    foreign_keys: [{{column: PATIENT, references: patients}}, {{column: ENCOUNTER, references: encounters}}]
    events:
      rows_per_person: 64
      time: START
      end: STOP
      duration: {{bounds: [0, 3650], edges: [0, 1, 7, 14, 30, 60, 90, 180, 365, 730, 3650], source: public}}
      duration_unit: days
      person_columns: [GENDER, BIRTHDATE]
    columns:
      - name: START
        type: date
        out_of_domain: clip
        domain: {{bounds: ["1920-01-01", "2024-12-31"], granularity: year, source: public}}
      - name: STOP
        type: date
        nullable: true
        description: Empty for chronic conditions and those still active on 2025-01-01.
        out_of_domain: clip
        domain: {{bounds: ["1920-01-01", "2025-12-31"], granularity: year, source: public}}
      - {{name: PATIENT, type: identifier, role: identifier}}
      - {{name: ENCOUNTER, type: identifier, role: identifier}}
      - name: CODE
        type: categorical
        role: sensitive
        description: SNOMED CT condition or finding.
        domain: {{categories: [{cond_codes}], source: public}}

  - name: medications
    description: Prescriptions at encounters; chronic ones are renewed at later visits.
    foreign_keys: [{{column: PATIENT, references: patients}}, {{column: ENCOUNTER, references: encounters}}]
    events:
      rows_per_person: 64
      time: START
      end: STOP
      duration: {{bounds: [0, 400], edges: [0, 7, 14, 21, 30, 60, 90, 180, 365, 400], source: public}}
      duration_unit: days
      person_columns: [GENDER, BIRTHDATE]
    columns:
      - name: START
        type: datetime
        out_of_domain: clip
        domain: {{bounds: ["1920-01-01T00:00:00", "2024-12-31T23:59:59"], granularity: year, source: public}}
      - name: STOP
        type: datetime
        nullable: true
        description: Empty for prescriptions still running on 2025-01-01.
        out_of_domain: clip
        domain: {{bounds: ["1920-01-01T00:00:00", "2025-12-31T23:59:59"], granularity: year, source: public}}
      - {{name: PATIENT, type: identifier, role: identifier}}
      - {{name: ENCOUNTER, type: identifier, role: identifier}}
      - name: CODE
        type: categorical
        role: sensitive
        description: RxNorm drug.
        domain: {{categories: [{med_codes}], source: public}}
      - name: DISPENSES
        type: integer
        out_of_domain: clip
        domain: {{bounds: [1, 12], bins: 12, source: public}}
"#,
        races = quoted(&races),
        counties = quoted(&counties),
        classes = quoted(&CLASSES),
        enc_codes = quoted(&encounter_codes()),
        cond_codes = quoted(&condition_codes()),
        med_codes = quoted(&medication_codes()),
    )
}

// ---------------------------------------------------------------------------------------------
// Benchmark: generation, then fit + sample in a child process.

/// The child: what `privsynth synth DATA --schema DATA/schema.yaml --epsilon 1 -o OUT --seed 1
/// --ledger LEDGER` does, through the library's pipeline.
fn child_synth(args: &[String]) -> i32 {
    use privsynth::pipeline::{FitOptions, Silent, linked::LinkedPlan, output, release::LedgerOptions};
    let [data, out, ledger] = args else {
        eprintln!("usage: ehr child-synth DATA_DIR OUT_DIR LEDGER_FILE");
        return 2;
    };
    let schema_path = Path::new(data).join("schema.yaml");
    let run = || -> privsynth::error::Result<()> {
        let schema = privsynth::schema::Schema::load(&schema_path)?;
        let plan = LinkedPlan::new(&schema, FitOptions::default(), &schema_path.display().to_string())?;
        let ledger = LedgerOptions { ledger: ledger.into(), policy: None };
        let fitted = plan.fit_files(std::slice::from_ref(data), 1.0, 1e-9, None, &ledger, &Silent)?;
        output::write_linked(
            &fitted.model,
            "the fitted model",
            None,
            1,
            Path::new(out),
            output::Output::new(output::TableFormat::Csv),
            &Silent,
            (&privsynth::llm::StageOptions::default(), None),
        )?;
        Ok(())
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("linked synth failed: {e}");
            e.exit_code()
        }
    }
}

struct ChildRun {
    code: i32,
    seconds: f64,
    peak_rss_mb: f64,
}

/// Run this binary in `child-synth` mode; wall time and peak RSS from `wait4`.
fn run_child(data: &Path, out: &Path, ledger: &Path) -> Result<ChildRun, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this benchmark's executable: {e}"))?;
    let t0 = Instant::now();
    let child = Command::new(exe)
        .arg("child-synth")
        .args([data, out, ledger])
        .spawn()
        .map_err(|e| format!("cannot start the child process: {e}"))?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child, which std has not reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let seconds = t0.elapsed().as_secs_f64();
    if pid < 0 {
        return Err(format!("wait4 failed: {}", std::io::Error::last_os_error()));
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
    // ru_maxrss is in KiB on Linux.
    Ok(ChildRun { code, seconds, peak_rss_mb: usage.ru_maxrss as f64 / 1024.0 })
}

fn count_lines(path: &Path) -> Option<u64> {
    let data = std::fs::read(path).ok()?;
    Some(data.iter().filter(|&&b| b == b'\n').count().saturating_sub(1) as u64)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn bench(sizes: &[u64], seed: u64) -> Result<(), String> {
    let mut lines = vec![];
    for &n in sizes {
        let tmp = tempfile::Builder::new()
            .prefix("privsynth-ehr-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let data = tmp.path().join("data");
        eprintln!("{n} persons: generating into {}", data.display());
        let g = generate(n, &data, seed, true)?;
        let all: u64 = g.rows.iter().sum();
        eprintln!(
            "  {:.1} s; rows: {} patients, {} encounters, {} conditions, {} medications; {:.0} MB",
            g.seconds,
            g.rows[0],
            g.rows[1],
            g.rows[2],
            g.rows[3],
            mb(g.bytes.iter().sum())
        );
        let out = tmp.path().join("synthetic");
        let ledger_dir = tmp.path().join("ledger");
        std::fs::create_dir_all(&ledger_dir).map_err(|e| format!("cannot create {}: {e}", ledger_dir.display()))?;
        eprintln!("  fit + sample in a child process");
        let run = run_child(&data, &out, &ledger_dir.join("ledger.jsonl"))?;
        let synth = if run.code == 0 {
            let counts: Vec<String> = TABLES
                .iter()
                .map(|t| {
                    count_lines(&out.join(format!("{t}.csv")))
                        .map_or_else(|| format!("{t}: missing"), |c| format!("{t} {c}"))
                })
                .collect();
            format!(
                "{:.1} s | {:.0} MB | {:.0} | {}",
                run.seconds,
                run.peak_rss_mb,
                all as f64 / run.seconds,
                counts.join(", ")
            )
        } else {
            format!(
                "failed (exit {}, {:.1} s, {:.0} MB peak) | n/a | n/a | n/a",
                run.code, run.seconds, run.peak_rss_mb
            )
        };
        lines.push(format!(
            "| {n} | {} / {} / {} / {} | {:.0} MB | {:.1} s | {:.0} | {synth} |",
            g.rows[0],
            g.rows[1],
            g.rows[2],
            g.rows[3],
            mb(g.bytes.iter().sum()),
            g.seconds,
            all as f64 / g.seconds,
        ));
    }
    println!(
        "| persons | rows: patients / encounters / conditions / medications | CSV size | generate | generate rows/s | fit + sample (wall) | peak RSS (child) | fit + sample input rows/s | output rows |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

fn main() {
    // `cargo bench` appends `--bench`; it is not ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.first().map(String::as_str) == Some("child-synth") {
        std::process::exit(child_synth(&args[1..]));
    }
    let mut seed = 1u64;
    let mut rest = vec![];
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--seed" {
            match it.next().and_then(|s| s.parse().ok()) {
                Some(s) => seed = s,
                None => fail("--seed needs a whole number"),
            }
        } else {
            rest.push(a);
        }
    }
    let result = if rest.first().map(String::as_str) == Some("gen") {
        let (Some(n), Some(dir), None) = (rest.get(1), rest.get(2), rest.get(3)) else {
            fail("usage: cargo bench --bench ehr -- gen PERSONS DIR [--seed S]");
        };
        let Ok(n) = n.parse::<u64>() else { fail(&format!("PERSONS must be a whole number, got {n:?}")) };
        generate(n, &PathBuf::from(dir), seed, true).map(|g| {
            let total: u64 = g.rows.iter().sum();
            for (k, t) in TABLES.iter().enumerate() {
                println!("{t}.csv: {} rows, {:.1} MB", g.rows[k], mb(g.bytes[k]));
            }
            println!(
                "{n} persons, {total} rows, {:.1} MB in {:.2} s ({:.0} rows/s, {:.1} MB/s)",
                mb(g.bytes.iter().sum()),
                g.seconds,
                total as f64 / g.seconds,
                mb(g.bytes.iter().sum()) / g.seconds
            );
        })
    } else {
        let sizes: Result<Vec<u64>, _> = rest
            .iter()
            .map(|s| s.parse::<u64>().map_err(|_| format!("PERSONS must be whole numbers, got {s:?}")))
            .collect();
        match sizes {
            Ok(s) if s.is_empty() => bench(&[10_000, 100_000], seed),
            Ok(s) => bench(&s, seed),
            Err(e) => Err(e),
        }
    };
    if let Err(e) = result {
        fail(&e);
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("ehr: {msg}");
    std::process::exit(2);
}
