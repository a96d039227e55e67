"""The built-in tracers' tables: FDG, [11C]methionine, [18F]FDOPA and [68Ga]PSMA-11, with their sources.

Each table gives every region of :data:`~.phantoms.REGION_LABELS` an uptake
(SUV-like, in the tracer's reference frame) and a two-tissue template
``(k2, k3, k4, vB)`` (see :mod:`.tracer_model`). Values marked *illustrative*
are plausible choices, not fitted to data; the others are cited next to them.
SUVs of published tables are often SUVmax; a region's value here is its mean,
so it sits at or below them. The registry of these tracers (and of a
user's own) is :mod:`.tracers`.
"""

from __future__ import annotations

from .anatomy import LYMPH_NODE_STATIONS
from .tracer_model import RegionKinetics, Tracer

__all__ = ["FDG", "FDOPA", "HALF_LIFE_C11_MIN", "HALF_LIFE_F18_MIN", "HALF_LIFE_GA68_MIN", "MET", "PSMA"]

# Physical half-lives (NNDC / ENSDF evaluated nuclear data): 18F 109.77 min, 11C 20.364 min, 68Ga 67.71 min.
HALF_LIFE_F18_MIN = 109.77
HALF_LIFE_C11_MIN = 20.364
HALF_LIFE_GA68_MIN = 67.71

# Templates shared by every tracer: urine (k2 = k3 = k4 = 0: the bladder integrates the plasma curve)
# and blood (the input function itself).
URINE = (0.0, 0.0, 0.0, 0.0)
BLOOD = (0.0, 0.0, 0.0, 1.0)
CORTICAL_LOBES = ("frontal_lobe", "parietal_lobe", "temporal_lobe", "occipital_lobe")


def _table(values: dict[str, tuple[float, tuple[float, float, float, float]]]) -> dict[str, RegionKinetics]:
    """``{region: (suv, (k2, k3, k4, vB))}`` as RegionKinetics."""
    return {name: RegionKinetics(suv, *template) for name, (suv, template) in values.items()}


# --- FDG -------------------------------------------------------------------------------------------
# (k2, k3, k4, vB) templates. Grey and white matter: Phelps et al., Ann Neurol 6:371, 1979
# (K1 0.102 / 0.054, k2 0.130 / 0.109, k3 0.062 / 0.045, k4 0.0068 / 0.0058 per min) with blood
# volumes of about 5 % / 3 %. The others are illustrative: muscle-like soft tissue (slow
# phosphorylation), myocardium (trapping), liver (glucose-6-phosphatase: large k2 and k4, uptake
# falling between 1 h and 2 h), and tumour (high k3, low k4: uptake still rising at 2 h, as in
# dual-time-point FDG studies, Kubota et al., Eur J Nucl Med 28:696, 2001).
FDG_GREY = (0.130, 0.062, 0.0068, 0.05)
FDG_WHITE = (0.109, 0.045, 0.0058, 0.03)
FDG_SOFT = (0.30, 0.03, 0.010, 0.02)
FDG_MYOCARDIUM = (0.35, 0.10, 0.0, 0.10)
FDG_LIVER = (0.90, 0.03, 0.010, 0.10)
FDG_TUMOUR = (0.25, 0.15, 0.005, 0.05)

# SUV-like uptake at 60 min. Brain: grey/white matter ratio of about 2.5-3 and lower cerebellar and brainstem
# uptake (Phelps 1979 metabolic rates; typical clinical cortex SUV 7-10); the lobes' differences (occipital a
# little above, temporal a little below the frontal and parietal cortex) are illustrative. Body: normal organ SUVs
# of Zincirkeser et al., J Int Med Res 35:231, 2007 and Ramos et al., Nucl Med Commun 22:1187, 2001 (liver about
# 2-2.5, spleen about 1.8, blood pool about 1.5-2, muscle about 0.6-1, fat about 0.3, lung about 0.5, bone marrow
# about 1.5-2); heart wall and bladder vary widely between patients (moderate values chosen). Salivary glands:
# moderate physiological uptake (Nakamoto et al., Radiology 234:879, 2005), value illustrative; bowel (variable),
# prostate and normal lymph nodes (at the soft-tissue level): illustrative.
FDG_UPTAKE = _table({
    "scalp": (1.0, FDG_SOFT), "skull": (0.8, FDG_SOFT), "csf": (0.3, FDG_SOFT),
    "grey_matter": (8.0, FDG_GREY), "frontal_lobe": (8.0, FDG_GREY), "parietal_lobe": (8.0, FDG_GREY),
    "temporal_lobe": (7.2, FDG_GREY), "occipital_lobe": (8.6, FDG_GREY),
    "white_matter": (3.0, FDG_WHITE), "deep_grey_matter": (8.5, FDG_GREY), "ventricles": (0.2, FDG_SOFT),
    "cerebellum": (6.5, FDG_GREY), "brainstem": (4.5, FDG_WHITE),
    "fat": (0.3, FDG_SOFT), "soft_tissue": (0.8, FDG_SOFT), "lungs": (0.5, FDG_SOFT),
    "heart_wall": (3.0, FDG_MYOCARDIUM), "blood_pool": (1.7, BLOOD), "liver": (2.3, FDG_LIVER),
    "spleen": (1.9, FDG_SOFT), "kidneys": (3.0, FDG_SOFT), "spine": (1.8, FDG_SOFT), "bladder": (15.0, URINE),
    "bowel": (1.5, FDG_SOFT), "salivary_glands": (1.8, FDG_SOFT), "prostate": (1.6, FDG_SOFT),
    **{f"lymph_nodes_{s}": (0.9, FDG_SOFT) for s in LYMPH_NODE_STATIONS},
})

# [18F]FDG: static scan 60 min after injection (EANM procedure guideline, Boellaard et al., Eur J Nucl Med Mol
# Imaging 42:328, 2015); hot lesions 1.5-6x and cold 0.1-0.6x their host; a lymph node is hot (metastatic) with
# probability 0.1 (illustrative).
FDG = Tracer("fdg", "2-[18F]fluoro-2-deoxy-D-glucose (glucose metabolism)", HALF_LIFE_F18_MIN, (60.0, 70.0),
             FDG_UPTAKE, FDG_TUMOUR, (1.5, 6.0), (0.1, 0.6), hot_node_probability=0.1)

# --- [11C]methionine ----------------------------------------------------------------------------
# Usually modelled as irreversible (k4 = 0); the templates are illustrative. Brain uptake: low cortex-to-white-
# matter contrast and tumour-to-normal ratios above about 1.5 (Law et al., EANM/EANO/RANO guideline, Eur J Nucl
# Med Mol Imaging 46:540, 2019); body values are illustrative and follow the high normal uptake of liver,
# pancreas, bone marrow, kidneys and salivary glands.
MET_BRAIN = (0.10, 0.02, 0.0, 0.05)
MET_SOFT = (0.20, 0.03, 0.0, 0.03)
MET_LIVER = (0.50, 0.08, 0.0, 0.10)
MET_TUMOUR = (0.10, 0.08, 0.0, 0.05)

MET_UPTAKE = _table({
    "scalp": (1.2, MET_SOFT), "skull": (1.8, MET_SOFT), "csf": (0.2, MET_SOFT),
    **{name: (1.6, MET_BRAIN) for name in ("grey_matter",) + CORTICAL_LOBES},
    "white_matter": (1.1, MET_BRAIN), "deep_grey_matter": (1.6, MET_BRAIN), "ventricles": (0.2, MET_SOFT),
    "cerebellum": (1.5, MET_BRAIN), "brainstem": (1.3, MET_BRAIN),
    "fat": (0.3, MET_SOFT), "soft_tissue": (1.0, MET_SOFT), "lungs": (0.5, MET_SOFT), "heart_wall": (2.0, MET_SOFT),
    "blood_pool": (1.0, BLOOD), "liver": (6.0, MET_LIVER), "spleen": (3.0, MET_SOFT), "kidneys": (4.0, MET_SOFT),
    "spine": (3.5, MET_SOFT), "bladder": (6.0, URINE), "bowel": (2.0, MET_SOFT), "salivary_glands": (2.5, MET_SOFT),
    "prostate": (1.5, MET_SOFT),
    **{f"lymph_nodes_{s}": (1.0, MET_SOFT) for s in LYMPH_NODE_STATIONS},
})

# L-[methyl-11C]methionine: static scan from about 20 min (Law et al. 2019); tumour-to-normal ratios from 1.5
# upwards; no hot lymph nodes.
MET = Tracer("met", "L-[methyl-11C]methionine (amino-acid transport)", HALF_LIFE_C11_MIN, (20.0, 30.0),
             MET_UPTAKE, MET_TUMOUR, (1.5, 4.0), (0.2, 0.7))

# --- [18F]FDOPA ---------------------------------------------------------------------------------
# 6-[18F]fluoro-L-DOPA is decarboxylated (AADC) and trapped in the striatum: irreversible there (Huang et al.,
# J Cereb Blood Flow Metab 11:898, 1991), while the rest of the brain takes up little (amino-acid transport and
# the metabolite 3-O-methyl-FDOPA, reversible). Templates illustrative: striatum irreversible, other brain
# one-tissue, soft tissue slowly reversible, tumour mostly transport (uptake plateauing after the early peak).
FDOPA_STRIATUM = (0.06, 0.04, 0.0, 0.04)
FDOPA_BRAIN = (0.06, 0.0, 0.0, 0.04)
FDOPA_SOFT = (0.25, 0.02, 0.01, 0.03)
FDOPA_TUMOUR = (0.12, 0.01, 0.0, 0.05)

# Uptake at 20-30 min. Brain: negligible apart from the basal ganglia; body: highest in the urinary system,
# liver, pancreas and exocrine glands (the pattern of Calabria et al., Clin Nucl Med, 2016, 215 patients).
# Values illustrative: striatum about twice the cortex in the early frame (the ratio rises later, as striatal
# trapping goes on), kidneys and bladder high (renal excretion), liver moderate.
FDOPA_UPTAKE = _table({
    "scalp": (0.8, FDOPA_SOFT), "skull": (0.9, FDOPA_SOFT), "csf": (0.3, FDOPA_BRAIN),
    **{name: (1.3, FDOPA_BRAIN) for name in ("grey_matter",) + CORTICAL_LOBES},
    "white_matter": (0.9, FDOPA_BRAIN), "deep_grey_matter": (2.6, FDOPA_STRIATUM), "ventricles": (0.25, FDOPA_BRAIN),
    "cerebellum": (1.2, FDOPA_BRAIN), "brainstem": (1.1, FDOPA_BRAIN),
    "fat": (0.3, FDOPA_SOFT), "soft_tissue": (0.8, FDOPA_SOFT), "lungs": (0.4, FDOPA_SOFT),
    "heart_wall": (1.2, FDOPA_SOFT), "blood_pool": (1.1, BLOOD), "liver": (1.8, FDOPA_SOFT),
    "spleen": (1.3, FDOPA_SOFT), "kidneys": (4.0, FDOPA_SOFT), "spine": (1.0, FDOPA_SOFT), "bladder": (25.0, URINE),
    "bowel": (1.6, FDOPA_SOFT), "salivary_glands": (1.4, FDOPA_SOFT), "prostate": (1.0, FDOPA_SOFT),
    **{f"lymph_nodes_{s}": (0.8, FDOPA_SOFT) for s in LYMPH_NODE_STATIONS},
})

# 6-[18F]fluoro-L-DOPA: an early static frame, 20-30 min (brain tumours: amino-acid PET guideline, Law et al.
# 2019); tumour-to-normal-brain ratios of gliomas usually above 1.5-2 (Law et al. 2019), hot contrast 1.5-4
# (illustrative); no hot lymph nodes.
FDOPA = Tracer("fdopa", "6-[18F]fluoro-L-DOPA (amino-acid transport, dopamine synthesis)", HALF_LIFE_F18_MIN,
               (20.0, 30.0), FDOPA_UPTAKE, FDOPA_TUMOUR, (1.5, 4.0), (0.3, 0.7))

# --- [68Ga]PSMA-11 ------------------------------------------------------------------------------
# [68Ga]Ga-PSMA-11 binds to PSMA and is internalised: irreversible in kidneys, salivary glands and tumours,
# whose uptake still rises between 1 h and 3 h (late imaging, Afshar-Oromieh et al., J Nucl Med 58:750, 2017),
# reversible elsewhere. Templates illustrative.
PSMA_BOUND = (0.05, 0.10, 0.0, 0.05)
PSMA_ORGAN = (0.30, 0.05, 0.03, 0.10)
PSMA_SOFT = (0.40, 0.02, 0.02, 0.03)
PSMA_TUMOUR = (0.05, 0.15, 0.0, 0.05)

# Uptake at 60 min. Kidneys (SUVmean 41.7), parotid (14.5) and submandibular glands (13.0) and normal prostate
# (2.4): Kurash et al., Sci Rep 10:3109, 2020 (80 scans, SUVmean). Liver, spleen and bowel: below the SUVmax of a
# 55-patient series (liver 8.2, spleen 10.9, duodenum 17.6; Clin Nucl Med 2017, "Evaluation of practical
# interpretation hurdles in 68Ga-PSMA PET/CT in 55 patients"), values illustrative. Brain very low (the tracer
# does not cross the intact blood-brain barrier), blood, muscle, fat, lung, bone and normal nodes: illustrative.
PSMA_UPTAKE = _table({
    "scalp": (0.5, PSMA_SOFT), "skull": (0.8, PSMA_SOFT), "csf": (0.05, PSMA_SOFT),
    **{name: (0.15, PSMA_SOFT) for name in ("grey_matter",) + CORTICAL_LOBES},
    "white_matter": (0.1, PSMA_SOFT), "deep_grey_matter": (0.15, PSMA_SOFT), "ventricles": (0.05, PSMA_SOFT),
    "cerebellum": (0.15, PSMA_SOFT), "brainstem": (0.15, PSMA_SOFT),
    "fat": (0.2, PSMA_SOFT), "soft_tissue": (0.6, PSMA_SOFT), "lungs": (0.4, PSMA_SOFT),
    "heart_wall": (1.0, PSMA_SOFT), "blood_pool": (1.6, BLOOD), "liver": (5.5, PSMA_ORGAN),
    "spleen": (7.0, PSMA_ORGAN), "kidneys": (40.0, PSMA_BOUND), "spine": (1.2, PSMA_SOFT), "bladder": (40.0, URINE),
    "bowel": (8.0, PSMA_ORGAN), "salivary_glands": (14.0, PSMA_BOUND), "prostate": (2.4, PSMA_SOFT),
    **{f"lymph_nodes_{s}": (1.0, PSMA_SOFT) for s in LYMPH_NODE_STATIONS},
})

# [68Ga]Ga-PSMA-11: static scan 60 min after injection (EANM/SNMMI procedure guideline, Fendler et al., Eur J
# Nucl Med Mol Imaging 44:1014, 2017); hot lesions 3-15x their host (illustrative; lymph-node metastases reach
# SUVmax of about 15, Kurash et al. 2020); a lymph node is hot with probability 0.15 (illustrative).
PSMA = Tracer("psma", "[68Ga]Ga-PSMA-11 (prostate-specific membrane antigen)", HALF_LIFE_GA68_MIN, (60.0, 70.0),
              PSMA_UPTAKE, PSMA_TUMOUR, (3.0, 15.0), (0.2, 0.6), hot_node_probability=0.15)
