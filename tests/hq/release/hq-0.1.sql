--
-- PostgreSQL database dump
--

\restrict ZXwbg0Bj5zX5o4U8HFJqwdL4e5gmzYqPwHUIOpa1Un1i3oXFksuH78Dpg93PJkY

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: allocation; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.allocation (
    id integer NOT NULL,
    entry_id text NOT NULL,
    lot_id text NOT NULL,
    points integer NOT NULL
);


--
-- Name: allocation_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.allocation_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: allocation_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.allocation_id_seq OWNED BY public.allocation.id;


--
-- Name: applied_event; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.applied_event (
    id text NOT NULL,
    store text NOT NULL,
    terminal text NOT NULL,
    seq bigint NOT NULL,
    epoch integer NOT NULL,
    kind text NOT NULL,
    wall_us bigint NOT NULL,
    applied_us bigint NOT NULL,
    outcome text NOT NULL,
    detail text NOT NULL,
    points_in integer NOT NULL,
    points_out integer NOT NULL
);


--
-- Name: audit; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit (
    id integer NOT NULL,
    seq bigint NOT NULL,
    wall_us bigint NOT NULL,
    trusted boolean NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    subject text NOT NULL,
    detail text NOT NULL
);


--
-- Name: audit_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.audit_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: audit_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.audit_id_seq OWNED BY public.audit.id;


--
-- Name: daily_report; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.daily_report (
    id text NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    day text NOT NULL,
    wall_us bigint NOT NULL,
    trusted boolean NOT NULL,
    body text NOT NULL
);


--
-- Name: exchange; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.exchange (
    id text NOT NULL,
    seq bigint NOT NULL,
    member_id text NOT NULL,
    sku text NOT NULL,
    qty integer NOT NULL,
    points integer NOT NULL,
    wall_us bigint NOT NULL,
    trusted boolean NOT NULL,
    operator text NOT NULL
);


--
-- Name: ledger_entry; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ledger_entry (
    id text NOT NULL,
    seq bigint NOT NULL,
    member_id text NOT NULL,
    kind text NOT NULL,
    points integer NOT NULL,
    debt_delta integer NOT NULL,
    sale_id text,
    reverses text,
    reason text NOT NULL,
    operator text NOT NULL,
    wall_us bigint NOT NULL,
    trusted boolean NOT NULL
);


--
-- Name: lot; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.lot (
    id text NOT NULL,
    member_id text NOT NULL,
    earned_us bigint NOT NULL,
    expires_us bigint,
    points integer NOT NULL,
    remaining integer NOT NULL,
    dated_trusted boolean NOT NULL
);


--
-- Name: member; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.member (
    id text NOT NULL,
    card_hash text NOT NULL,
    card_last4 text NOT NULL,
    name text NOT NULL,
    phone_hash text,
    phone_last4 text NOT NULL,
    birthday text,
    referrer_id text,
    referral_paid boolean NOT NULL,
    registered_us bigint NOT NULL,
    tier text NOT NULL,
    tier_reviewed_us bigint,
    balance integer NOT NULL,
    debt integer NOT NULL
);


--
-- Name: member_day; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.member_day (
    member_id text NOT NULL,
    day text NOT NULL,
    earned integer NOT NULL,
    redeemed integer NOT NULL,
    offline_redeemed integer NOT NULL
);


--
-- Name: member_hold; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.member_hold (
    id text NOT NULL,
    card_hash text NOT NULL,
    points integer NOT NULL,
    state text NOT NULL,
    store text NOT NULL,
    terminal text NOT NULL,
    created_us bigint NOT NULL,
    expires_us bigint NOT NULL,
    settled_us bigint
);


--
-- Name: meta; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.meta (
    key text NOT NULL,
    value text NOT NULL
);


--
-- Name: operator; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.operator (
    name text NOT NULL,
    role text NOT NULL,
    pin_salt text NOT NULL,
    pin_hash text NOT NULL,
    active boolean NOT NULL
);


--
-- Name: outbox; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.outbox (
    id text NOT NULL,
    seq bigint NOT NULL,
    epoch integer NOT NULL,
    kind text NOT NULL,
    payload text NOT NULL,
    created_us bigint NOT NULL,
    trusted boolean NOT NULL,
    acked_us bigint
);


--
-- Name: product; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.product (
    sku text NOT NULL,
    barcode text,
    name text NOT NULL,
    category text NOT NULL,
    price_fen bigint NOT NULL
);


--
-- Name: refund; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.refund (
    id text NOT NULL,
    seq bigint NOT NULL,
    sale_id text NOT NULL,
    kind text NOT NULL,
    wall_us bigint NOT NULL,
    trusted boolean NOT NULL,
    refunded_fen bigint NOT NULL,
    points_reversed integer NOT NULL,
    points_restored integer NOT NULL,
    operator text NOT NULL
);


--
-- Name: refund_line; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.refund_line (
    refund_id text NOT NULL,
    line_no integer NOT NULL,
    qty integer NOT NULL,
    fen bigint NOT NULL
);


--
-- Name: sale; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sale (
    id text NOT NULL,
    seq bigint NOT NULL,
    member_id text,
    wall_us bigint NOT NULL,
    trusted boolean NOT NULL,
    tender text NOT NULL,
    list_fen bigint NOT NULL,
    discount_fen bigint NOT NULL,
    deduction_fen bigint NOT NULL,
    paid_fen bigint NOT NULL,
    points_earned integer NOT NULL,
    points_redeemed integer NOT NULL,
    earn_entry text,
    redeem_entry text,
    tier text NOT NULL,
    operator text NOT NULL,
    detail text NOT NULL
);


--
-- Name: sale_line; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sale_line (
    sale_id text NOT NULL,
    line_no integer NOT NULL,
    sku text NOT NULL,
    name text NOT NULL,
    category text NOT NULL,
    qty integer NOT NULL,
    price_fen bigint NOT NULL,
    list_fen bigint NOT NULL,
    paid_fen bigint NOT NULL
);


--
-- Name: terminal_seen; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.terminal_seen (
    store text NOT NULL,
    terminal text NOT NULL,
    online boolean NOT NULL,
    epoch integer NOT NULL,
    version text NOT NULL,
    rule_version integer NOT NULL,
    backlog integer NOT NULL,
    devices text NOT NULL,
    rejected text NOT NULL,
    last_seen_us bigint NOT NULL
);


--
-- Name: allocation id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.allocation ALTER COLUMN id SET DEFAULT nextval('public.allocation_id_seq'::regclass);


--
-- Name: audit id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit ALTER COLUMN id SET DEFAULT nextval('public.audit_id_seq'::regclass);


--
-- Data for Name: allocation; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.allocation (id, entry_id, lot_id, points) FROM stdin;
1	01a2450b-7b75-7cc1-9ad8-046ee558f44a	01a2450b-7b61-7f33-94af-9699ab82baf2	-100
2	01a2450b-7b75-7cc1-9ad8-046ee558f44a	01a2450b-7b66-75e2-bd96-317afde426b5	-400
3	01a2450b-7b7d-7f14-9168-867a10385db2	01a2450b-7b6e-73ae-bc43-8847159cb5a5	-400
4	01a2450b-7b81-73e1-be07-6b42c2c1b90b	01a2450b-7b63-7858-a813-6588a34b181d	-50
5	01a2450b-7b90-7b41-a1d3-6139bb9ad3f4	01a2450b-7b83-715a-a3b9-c01534aee6b0	-470
6	01a2450b-7b90-7b41-a1d3-6139bb9ad3f4	01a2450b-7b8a-71af-b6ea-de59c0256494	-30
7	01a2450b-7b96-74eb-b7a0-b403f802180f	01a2450b-7b8a-71af-b6ea-de59c0256494	-440
8	01a2450b-7b96-74eb-b7a0-b403f802180f	01a2450b-7b71-764d-a734-a504f13e4c23	-30
9	01a2450b-7b9a-7119-9be9-5874ca29ed3a	01a2450b-7b63-7858-a813-6588a34b181d	-50
\.


--
-- Data for Name: applied_event; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.applied_event (id, store, terminal, seq, epoch, kind, wall_us, applied_us, outcome, detail, points_in, points_out) FROM stdin;
01a2450b-780e-76ff-98d5-26a044527c3d	S001	T01	2	1	register	1796451110261168	1796454710111738	applied	registered at S001/T01	100	0
01a2450b-7810-70f8-aec7-28aa83ebdf13	S001	T01	5	1	register	1796451111261168	1796454710114567	applied	registered at S001/T01	100	0
01a2450b-7811-7440-a386-7870393acb70	S001	T01	8	1	register	1796451112261168	1796454710116975	applied	registered at S001/T01	100	0
01a2450b-7812-7d35-9437-2b136a8bbe7f	S001	T01	11	1	sale	1796451113261168	1796454710117204	applied	earned 0 (till: 0), redeemed 0	0	0
01a2450b-7813-7152-bc52-c25cdb00d4d1	S001	T01	14	1	sale	1796451114261168	1796454710119560	applied	earned 400 (till: 400), redeemed 0	400	0
01a2450b-7814-715e-ad49-2cf17a977dad	S001	T01	17	1	sale	1796451115261168	1796454710120986	applied	earned 400 (till: 400), redeemed 0	400	0
01a2450b-7815-7235-978c-f0b28ffb7fda	S001	T01	20	1	sale	1796451116261168	1796454710122323	applied	earned 400 (till: 400), redeemed 0	400	0
01a2450b-7816-7839-aca1-65a96bdca9a8	S001	T01	22	1	sale	1796451117261168	1796454710122793	applied	earned 0 (till: 0), redeemed 0	0	0
01a2450b-7817-73ee-a2d8-23dba49ebbf0	S001	T01	25	1	sale	1796451118261168	1796454710124556	applied	earned 400 (till: 400), redeemed 0	400	0
01a2450b-7818-77ed-a440-2419b9b22525	S001	T01	28	1	sale	1796451119261168	1796454710126172	applied	earned 400 (till: 400), redeemed 0	400	0
01a2450b-7819-7145-89b3-1b6e5b39f145	S001	T01	31	1	sale	1796451120261168	1796454710127660	applied	earned 400 (till: 400), redeemed 0	400	0
01a2450b-781a-7f9e-8401-d3f53e386048	S001	T01	33	1	sale	1796451121261168	1796454710127819	applied	earned 0 (till: 0), redeemed 0	0	0
01a2450b-781a-7e1a-9d62-3a12a31808ce	S001	T01	36	1	sale	1796451122261168	1796454710129405	applied	earned 400 (till: 400), redeemed 0	400	0
01a2450b-781c-7c86-9a38-be5589ab7e7c	S001	T01	39	1	sale	1796451123261168	1796454710130975	applied	earned 400 (till: 400), redeemed 0	400	0
01a2450b-781d-7208-8e4e-8dd33b7bf25a	S001	T01	42	1	sale	1796451124261168	1796454710132385	applied	earned 400 (till: 400), redeemed 0	400	0
01a2450b-781e-7ea8-a29d-23b0d3bc74cf	S001	T01	46	1	sale	1796451125261168	1796454710135603	applied	earned 699 (till: 699), redeemed 500	699	500
01a2450b-7822-7ffd-85d7-f3bcf052e0af	S001	T01	49	1	refund	1796451126261168	1796454710143994	applied	reversed 400, restored 0	0	400
01a2450b-7824-757b-b8e7-7b2f8b2835e6	S001	T01	52	1	adjust	1796451127261168	1796454710146386	applied	adjusted -50	0	50
01a2450b-7832-77d4-be6b-e1dac27ee13b	S002	T01	2	1	register	1796451110297426	1796454710146597	applied	already a member of the chain: nothing to add	0	0
01a2450b-7833-7028-9fc8-8186b251562c	S002	T01	5	1	register	1796451111297426	1796454710146821	applied	already a member of the chain: nothing to add	0	0
01a2450b-7835-750f-9ebf-6811fc46fde0	S002	T01	8	1	register	1796451112297426	1796454710147015	applied	already a member of the chain: nothing to add	0	0
01a2450b-7836-74b0-8be2-d1f405821b66	S002	T01	11	1	sale	1796451113297426	1796454710147137	applied	earned 0 (till: 0), redeemed 0	0	0
01a2450b-7837-704d-bfa4-3fe2d1f078fd	S002	T01	14	1	sale	1796451114297426	1796454710148467	applied	earned 470 (till: 400), redeemed 0	470	0
01a2450b-7837-7af1-906b-914eeacc8c6d	S002	T01	17	1	sale	1796451115297426	1796454710149681	applied	earned 470 (till: 400), redeemed 0	470	0
01a2450b-7838-7c29-8936-204830ef22b3	S002	T01	20	1	sale	1796451116297426	1796454710151067	applied	earned 470 (till: 400), redeemed 0	470	0
01a2450b-7839-7468-9ccc-944222020678	S002	T01	22	1	sale	1796451117297426	1796454710151179	applied	earned 0 (till: 0), redeemed 0	0	0
01a2450b-783a-7976-84e9-e5ba44b26070	S002	T01	25	1	sale	1796451118297426	1796454710152638	applied	earned 470 (till: 400), redeemed 0	470	0
01a2450b-783b-788e-be20-35431f154f08	S002	T01	28	1	sale	1796451119297426	1796454710153983	applied	earned 470 (till: 400), redeemed 0	470	0
01a2450b-783c-7c0a-87ac-865a8a28adb9	S002	T01	31	1	sale	1796451120297426	1796454710155305	applied	earned 470 (till: 400), redeemed 0	470	0
01a2450b-783d-7495-8335-b90667b1fced	S002	T01	33	1	sale	1796451121297426	1796454710155413	applied	earned 0 (till: 0), redeemed 0	0	0
01a2450b-783e-7b3a-be1d-4bf922d764c1	S002	T01	36	1	sale	1796451122297426	1796454710156775	applied	earned 470 (till: 400), redeemed 0	470	0
01a2450b-783f-7dfb-bcaa-25800195cc1f	S002	T01	39	1	sale	1796451123297426	1796454710158073	applied	earned 470 (till: 400), redeemed 0	470	0
01a2450b-7840-7669-9b73-433aad283156	S002	T01	42	1	sale	1796451124297426	1796454710159462	applied	earned 470 (till: 400), redeemed 0	470	0
01a2450b-7841-7aa1-a91a-5e802fc7a3ae	S002	T01	46	1	sale	1796451125297426	1796454710162442	applied	earned 699 (till: 699), redeemed 500	699	500
01a2450b-7845-7567-9871-060a6d9ab8db	S002	T01	49	1	refund	1796451126297426	1796454710169479	applied	reversed 470, restored 0	0	470
01a2450b-7847-767c-a328-40d63b7e7dc0	S002	T01	52	1	adjust	1796451127297426	1796454710171452	applied	adjusted -50	0	50
\.


--
-- Data for Name: audit; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.audit (id, seq, wall_us, trusted, actor, action, subject, detail) FROM stdin;
1	2	1796451110261168	t	S001/T01	register	01a2450b-7b5b-74e3-9b01-3113d356bfde	
2	4	1796451111261168	t	S001/T01	register	01a2450b-7b60-7dca-9ca7-d76b707670fa	
3	6	1796451112261168	t	S001/T01	register	01a2450b-7b63-7043-93e7-2c749a586c1c	
4	33	1796451126261168	t	ann	refund	654348af-aaf7-5d02-9f1b-dc64e524b478	953f38b1-97e8-5188-9c4b-7c141fbca7b0 40001 fen
5	35	1796451127261168	t	ann	adjust	01a2450b-7b63-7043-93e7-2c749a586c1c	-50 damaged card (at S001/T01)
6	62	1796451126297426	t	ann	refund	8b589c78-7f4f-58ff-985f-f351f82b51c4	843f95e3-c1db-5d86-93a5-be4619914ca8 39201 fen
7	64	1796451127297426	t	ann	adjust	01a2450b-7b63-7043-93e7-2c749a586c1c	-50 damaged card (at S002/T01)
\.


--
-- Data for Name: daily_report; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.daily_report (id, seq, kind, day, wall_us, trusted, body) FROM stdin;
\.


--
-- Data for Name: exchange; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.exchange (id, seq, member_id, sku, qty, points, wall_us, trusted, operator) FROM stdin;
\.


--
-- Data for Name: ledger_entry; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.ledger_entry (id, seq, member_id, kind, points, debt_delta, sale_id, reverses, reason, operator, wall_us, trusted) FROM stdin;
01a2450b-7b5c-73d3-830c-b5dd5cb9f1f2	1	01a2450b-7b5b-74e3-9b01-3113d356bfde	bonus	100	0	\N	\N	registration		1796451110261168	t
01a2450b-7b61-7f33-94af-9699ab82baf2	3	01a2450b-7b60-7dca-9ca7-d76b707670fa	bonus	100	0	\N	\N	registration		1796451111261168	t
01a2450b-7b63-7858-a813-6588a34b181d	5	01a2450b-7b63-7043-93e7-2c749a586c1c	bonus	100	0	\N	\N	registration		1796451112261168	t
01a2450b-7b66-75e2-bd96-317afde426b5	9	01a2450b-7b60-7dca-9ca7-d76b707670fa	earn	400	0	654348af-aaf7-5d02-9f1b-dc64e524b478	\N			1796451114261168	t
01a2450b-7b67-786e-bb8e-89ec291ca520	11	01a2450b-7b63-7043-93e7-2c749a586c1c	earn	400	0	9367e77a-b40e-5eb5-be8f-cc9c2898b38c	\N			1796451115261168	t
01a2450b-7b69-764b-ab4a-335a011e39bd	13	01a2450b-7b5b-74e3-9b01-3113d356bfde	earn	400	0	cf5aeaae-ab98-5c22-aa27-44f41c618d6d	\N			1796451116261168	t
01a2450b-7b6b-7e22-8999-5826336497d4	16	01a2450b-7b63-7043-93e7-2c749a586c1c	earn	400	0	e3e70ea4-3a8a-5db8-8e29-c9ed78b9ba33	\N			1796451118261168	t
01a2450b-7b6d-7e30-9bf6-51abd9e3b568	18	01a2450b-7b5b-74e3-9b01-3113d356bfde	earn	400	0	da9c47f7-5fdf-5ec7-803c-eca6ebe3b0c3	\N			1796451119261168	t
01a2450b-7b6e-73ae-bc43-8847159cb5a5	20	01a2450b-7b60-7dca-9ca7-d76b707670fa	earn	400	0	d9964395-08f5-56e9-9678-c17f6ff39369	\N			1796451120261168	t
01a2450b-7b70-74c0-aa43-a07409d5a356	23	01a2450b-7b5b-74e3-9b01-3113d356bfde	earn	400	0	b9f978b9-c81d-5ba3-a0d7-7192f94ffd80	\N			1796451122261168	t
01a2450b-7b71-764d-a734-a504f13e4c23	25	01a2450b-7b60-7dca-9ca7-d76b707670fa	earn	400	0	77df9a9c-513a-5c23-9f69-7c98650dc67a	\N			1796451123261168	t
01a2450b-7b73-7737-94fa-cfad7cbf27c4	27	01a2450b-7b63-7043-93e7-2c749a586c1c	earn	400	0	f2e543ca-9e78-5014-bb71-31ccafd07f53	\N			1796451124261168	t
01a2450b-7b75-7cc1-9ad8-046ee558f44a	29	01a2450b-7b60-7dca-9ca7-d76b707670fa	redeem	-500	0	8a0eb200-7370-5f16-b4fc-4fb3f8c1ebdc	\N		ann	1796451125261168	t
01a2450b-7b75-7bbe-a45a-c9c5f6690f65	30	01a2450b-7b60-7dca-9ca7-d76b707670fa	earn	699	0	8a0eb200-7370-5f16-b4fc-4fb3f8c1ebdc	\N			1796451125261168	t
01a2450b-7b7d-7f14-9168-867a10385db2	32	01a2450b-7b60-7dca-9ca7-d76b707670fa	reverse	-400	0	654348af-aaf7-5d02-9f1b-dc64e524b478	01a2450b-7b66-75e2-bd96-317afde426b5		ann	1796451126261168	t
01a2450b-7b81-73e1-be07-6b42c2c1b90b	34	01a2450b-7b63-7043-93e7-2c749a586c1c	adjust	-50	0	\N	\N	damaged card (at S001/T01)	ann	1796451127261168	t
01a2450b-7b83-715a-a3b9-c01534aee6b0	38	01a2450b-7b60-7dca-9ca7-d76b707670fa	earn	470	0	8b589c78-7f4f-58ff-985f-f351f82b51c4	\N			1796451114297426	t
01a2450b-7b84-7a73-bf3e-8d121bab3e85	40	01a2450b-7b63-7043-93e7-2c749a586c1c	earn	470	0	f1eb24ca-72d0-5a1f-a94c-7cd476b760f8	\N			1796451115297426	t
01a2450b-7b86-70c3-9492-8dddc6ee025e	42	01a2450b-7b5b-74e3-9b01-3113d356bfde	earn	470	0	4d2e6e40-3060-5bb5-a583-3a90359734db	\N			1796451116297426	t
01a2450b-7b87-797c-92bf-8ba66f80f86f	45	01a2450b-7b63-7043-93e7-2c749a586c1c	earn	470	0	08e7b9f4-a523-5328-97b3-e184db2caa67	\N			1796451118297426	t
01a2450b-7b89-70fe-898c-72bbfb030b24	47	01a2450b-7b5b-74e3-9b01-3113d356bfde	earn	470	0	7828b86f-22b3-54fd-8944-47a54ba96cc4	\N			1796451119297426	t
01a2450b-7b8a-71af-b6ea-de59c0256494	49	01a2450b-7b60-7dca-9ca7-d76b707670fa	earn	470	0	ba6318a9-edcf-5d76-94d5-9650c8d29e75	\N			1796451120297426	t
01a2450b-7b8b-70cd-80f9-6056d5acff2c	52	01a2450b-7b5b-74e3-9b01-3113d356bfde	earn	470	0	b74d6dac-b2a8-5d40-b090-0c84cc4353bd	\N			1796451122297426	t
01a2450b-7b8d-7cb1-be2e-97e30210c909	54	01a2450b-7b60-7dca-9ca7-d76b707670fa	earn	470	0	3bd1b441-84a7-5105-86cf-ff9ee5bdf63e	\N			1796451123297426	t
01a2450b-7b8e-75e9-b8b8-71637ccf378c	56	01a2450b-7b63-7043-93e7-2c749a586c1c	earn	470	0	8e54b3e9-9659-546d-89e3-22b882cb8e3e	\N			1796451124297426	t
01a2450b-7b90-7b41-a1d3-6139bb9ad3f4	58	01a2450b-7b60-7dca-9ca7-d76b707670fa	redeem	-500	0	d65ab765-7630-5062-8be0-c9c0c2207adb	\N		ann	1796451125297426	t
01a2450b-7b90-73bd-a0aa-27cfdf0be804	59	01a2450b-7b60-7dca-9ca7-d76b707670fa	earn	699	0	d65ab765-7630-5062-8be0-c9c0c2207adb	\N			1796451125297426	t
01a2450b-7b96-74eb-b7a0-b403f802180f	61	01a2450b-7b60-7dca-9ca7-d76b707670fa	reverse	-470	0	8b589c78-7f4f-58ff-985f-f351f82b51c4	01a2450b-7b83-715a-a3b9-c01534aee6b0		ann	1796451126297426	t
01a2450b-7b9a-7119-9be9-5874ca29ed3a	63	01a2450b-7b63-7043-93e7-2c749a586c1c	adjust	-50	0	\N	\N	damaged card (at S002/T01)	ann	1796451127297426	t
\.


--
-- Data for Name: lot; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.lot (id, member_id, earned_us, expires_us, points, remaining, dated_trusted) FROM stdin;
01a2450b-7b5c-73d3-830c-b5dd5cb9f1f2	01a2450b-7b5b-74e3-9b01-3113d356bfde	1796451110261168	1827987110261168	100	100	t
01a2450b-7b67-786e-bb8e-89ec291ca520	01a2450b-7b63-7043-93e7-2c749a586c1c	1796451115261168	1827987115261168	400	400	t
01a2450b-7b69-764b-ab4a-335a011e39bd	01a2450b-7b5b-74e3-9b01-3113d356bfde	1796451116261168	1827987116261168	400	400	t
01a2450b-7b6b-7e22-8999-5826336497d4	01a2450b-7b63-7043-93e7-2c749a586c1c	1796451118261168	1827987118261168	400	400	t
01a2450b-7b6d-7e30-9bf6-51abd9e3b568	01a2450b-7b5b-74e3-9b01-3113d356bfde	1796451119261168	1827987119261168	400	400	t
01a2450b-7b70-74c0-aa43-a07409d5a356	01a2450b-7b5b-74e3-9b01-3113d356bfde	1796451122261168	1827987122261168	400	400	t
01a2450b-7b73-7737-94fa-cfad7cbf27c4	01a2450b-7b63-7043-93e7-2c749a586c1c	1796451124261168	1827987124261168	400	400	t
01a2450b-7b61-7f33-94af-9699ab82baf2	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451111261168	1827987111261168	100	0	t
01a2450b-7b66-75e2-bd96-317afde426b5	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451114261168	1827987114261168	400	0	t
01a2450b-7b75-7bbe-a45a-c9c5f6690f65	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451125261168	1827987125261168	699	699	t
01a2450b-7b6e-73ae-bc43-8847159cb5a5	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451120261168	1827987120261168	400	0	t
01a2450b-7b84-7a73-bf3e-8d121bab3e85	01a2450b-7b63-7043-93e7-2c749a586c1c	1796451115297426	1827987115297426	470	470	t
01a2450b-7b86-70c3-9492-8dddc6ee025e	01a2450b-7b5b-74e3-9b01-3113d356bfde	1796451116297426	1827987116297426	470	470	t
01a2450b-7b87-797c-92bf-8ba66f80f86f	01a2450b-7b63-7043-93e7-2c749a586c1c	1796451118297426	1827987118297426	470	470	t
01a2450b-7b89-70fe-898c-72bbfb030b24	01a2450b-7b5b-74e3-9b01-3113d356bfde	1796451119297426	1827987119297426	470	470	t
01a2450b-7b8b-70cd-80f9-6056d5acff2c	01a2450b-7b5b-74e3-9b01-3113d356bfde	1796451122297426	1827987122297426	470	470	t
01a2450b-7b8d-7cb1-be2e-97e30210c909	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451123297426	1827987123297426	470	470	t
01a2450b-7b8e-75e9-b8b8-71637ccf378c	01a2450b-7b63-7043-93e7-2c749a586c1c	1796451124297426	1827987124297426	470	470	t
01a2450b-7b83-715a-a3b9-c01534aee6b0	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451114297426	1827987114297426	470	0	t
01a2450b-7b90-73bd-a0aa-27cfdf0be804	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451125297426	1827987125297426	699	699	t
01a2450b-7b8a-71af-b6ea-de59c0256494	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451120297426	1827987120297426	470	0	t
01a2450b-7b71-764d-a734-a504f13e4c23	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451123261168	1827987123261168	400	370	t
01a2450b-7b63-7858-a813-6588a34b181d	01a2450b-7b63-7043-93e7-2c749a586c1c	1796451112261168	1827987112261168	100	0	t
\.


--
-- Data for Name: member; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.member (id, card_hash, card_last4, name, phone_hash, phone_last4, birthday, referrer_id, referral_paid, registered_us, tier, tier_reviewed_us, balance, debt) FROM stdin;
01a2450b-7b5b-74e3-9b01-3113d356bfde	0e9065a6bb7135185723187a941d07c7987209f301b01ceb13eaec2dcfe29b6a			\N		\N	\N	f	1796451110261168	silver	1796054400000000	2710	0
01a2450b-7b60-7dca-9ca7-d76b707670fa	5e8e8acc2fd7f7aac0646ff6cfb6230a3395b422709743170851d452100df6aa			\N		\N	\N	f	1796451111261168	silver	1796054400000000	2238	0
01a2450b-7b63-7043-93e7-2c749a586c1c	ad8770c8f97c60c8b600f8a7873a877acbbb30d408021595608d59044f8230da			\N		\N	\N	f	1796451112261168	silver	1796054400000000	2610	0
\.


--
-- Data for Name: member_day; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.member_day (member_id, day, earned, redeemed, offline_redeemed) FROM stdin;
01a2450b-7b5b-74e3-9b01-3113d356bfde	2026-12-05	2610	0	0
01a2450b-7b63-7043-93e7-2c749a586c1c	2026-12-05	2610	0	0
01a2450b-7b60-7dca-9ca7-d76b707670fa	2026-12-05	4008	1000	0
\.


--
-- Data for Name: member_hold; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.member_hold (id, card_hash, points, state, store, terminal, created_us, expires_us, settled_us) FROM stdin;
hold-pending-1	0e9065a6bb7135185723187a941d07c7987209f301b01ceb13eaec2dcfe29b6a	100	pending	S001	T01	1796115600000000	1796115720000000	\N
\.


--
-- Data for Name: meta; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.meta (key, value) FROM stdin;
seq	64
trusted_floor_us	1796451127297426
\.


--
-- Data for Name: operator; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.operator (name, role, pin_salt, pin_hash, active) FROM stdin;
\.


--
-- Data for Name: outbox; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.outbox (id, seq, epoch, kind, payload, created_us, trusted, acked_us) FROM stdin;
\.


--
-- Data for Name: product; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.product (sku, barcode, name, category, price_fen) FROM stdin;
\.


--
-- Data for Name: refund; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.refund (id, seq, sale_id, kind, wall_us, trusted, refunded_fen, points_reversed, points_restored, operator) FROM stdin;
953f38b1-97e8-5188-9c4b-7c141fbca7b0	31	654348af-aaf7-5d02-9f1b-dc64e524b478	refund	1796451126261168	t	40001	400	0	ann
843f95e3-c1db-5d86-93a5-be4619914ca8	60	8b589c78-7f4f-58ff-985f-f351f82b51c4	refund	1796451126297426	t	39201	470	0	ann
\.


--
-- Data for Name: refund_line; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.refund_line (refund_id, line_no, qty, fen) FROM stdin;
953f38b1-97e8-5188-9c4b-7c141fbca7b0	1	1	40001
843f95e3-c1db-5d86-93a5-be4619914ca8	1	1	39201
\.


--
-- Data for Name: sale; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.sale (id, seq, member_id, wall_us, trusted, tender, list_fen, discount_fen, deduction_fen, paid_fen, points_earned, points_redeemed, earn_entry, redeem_entry, tier, operator, detail) FROM stdin;
81d9eae4-0245-5965-b000-39d6b310d5f2	7	\N	1796451113261168	t	cash	40000	0	0	40000	0	0	\N	\N		ann	{"why": [], "promotion": null, "birthday": false}
654348af-aaf7-5d02-9f1b-dc64e524b478	8	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451114261168	t	cash	40001	0	0	40001	400	0	01a2450b-7b66-75e2-bd96-317afde426b5	\N	member	O'Brien \\ 张	{"why": ["SKU1 400.01 yuan x1 = 400.01", "400.01 floor 400"], "promotion": null, "birthday": false}
9367e77a-b40e-5eb5-be8f-cc9c2898b38c	10	01a2450b-7b63-7043-93e7-2c749a586c1c	1796451115261168	t	cash	40002	0	0	40002	400	0	01a2450b-7b67-786e-bb8e-89ec291ca520	\N	member	ann	{"why": ["SKU1 400.02 yuan x1 = 400.02", "400.02 floor 400"], "promotion": null, "birthday": false}
cf5aeaae-ab98-5c22-aa27-44f41c618d6d	12	01a2450b-7b5b-74e3-9b01-3113d356bfde	1796451116261168	t	cash	40003	0	0	40003	400	0	01a2450b-7b69-764b-ab4a-335a011e39bd	\N	member	O'Brien \\ 张	{"why": ["SKU1 400.03 yuan x1 = 400.03", "400.03 floor 400"], "promotion": null, "birthday": false}
e97f39d8-1b78-52f3-9d58-a8d7495c84f4	14	\N	1796451117261168	t	cash	40004	0	0	40004	0	0	\N	\N		ann	{"why": [], "promotion": null, "birthday": false}
e3e70ea4-3a8a-5db8-8e29-c9ed78b9ba33	15	01a2450b-7b63-7043-93e7-2c749a586c1c	1796451118261168	t	cash	40005	0	0	40005	400	0	01a2450b-7b6b-7e22-8999-5826336497d4	\N	member	O'Brien \\ 张	{"why": ["SKU1 400.05 yuan x1 = 400.05", "400.05 floor 400"], "promotion": null, "birthday": false}
da9c47f7-5fdf-5ec7-803c-eca6ebe3b0c3	17	01a2450b-7b5b-74e3-9b01-3113d356bfde	1796451119261168	t	cash	40006	0	0	40006	400	0	01a2450b-7b6d-7e30-9bf6-51abd9e3b568	\N	member	ann	{"why": ["SKU1 400.06 yuan x1 = 400.06", "400.06 floor 400"], "promotion": null, "birthday": false}
d9964395-08f5-56e9-9678-c17f6ff39369	19	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451120261168	t	cash	40007	0	0	40007	400	0	01a2450b-7b6e-73ae-bc43-8847159cb5a5	\N	member	O'Brien \\ 张	{"why": ["SKU1 400.07 yuan x1 = 400.07", "400.07 floor 400"], "promotion": null, "birthday": false}
f363c935-c296-5b83-b739-0389304e562f	21	\N	1796451121261168	t	cash	40008	0	0	40008	0	0	\N	\N		ann	{"why": [], "promotion": null, "birthday": false}
b9f978b9-c81d-5ba3-a0d7-7192f94ffd80	22	01a2450b-7b5b-74e3-9b01-3113d356bfde	1796451122261168	t	cash	40009	0	0	40009	400	0	01a2450b-7b70-74c0-aa43-a07409d5a356	\N	member	O'Brien \\ 张	{"why": ["SKU1 400.09 yuan x1 = 400.09", "400.09 floor 400"], "promotion": null, "birthday": false}
77df9a9c-513a-5c23-9f69-7c98650dc67a	24	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451123261168	t	cash	40010	0	0	40010	400	0	01a2450b-7b71-764d-a734-a504f13e4c23	\N	member	ann	{"why": ["SKU1 400.1 yuan x1 = 400.1", "400.1 floor 400"], "promotion": null, "birthday": false}
f2e543ca-9e78-5014-bb71-31ccafd07f53	26	01a2450b-7b63-7043-93e7-2c749a586c1c	1796451124261168	t	cash	40011	0	0	40011	400	0	01a2450b-7b73-7737-94fa-cfad7cbf27c4	\N	member	O'Brien \\ 张	{"why": ["SKU1 400.11 yuan x1 = 400.11", "400.11 floor 400"], "promotion": null, "birthday": false}
8a0eb200-7370-5f16-b4fc-4fb3f8c1ebdc	28	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451125261168	t	cash	60000	1200	500	58300	699	500	01a2450b-7b75-7bbe-a45a-c9c5f6690f65	01a2450b-7b75-7cc1-9ad8-046ee558f44a	silver	ann	{"why": ["SKU1 583 yuan x1 = 583", "tier silver x1.2", "699.6 floor 699"], "promotion": null, "birthday": false}
79622d9d-68c6-5fdd-9ca6-33ef3d7e64b5	36	\N	1796451113297426	t	cash	40000	0	0	40000	0	0	\N	\N		ann	{"why": [], "promotion": null, "birthday": false}
8b589c78-7f4f-58ff-985f-f351f82b51c4	37	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451114297426	t	cash	40001	800	0	39201	470	0	01a2450b-7b83-715a-a3b9-c01534aee6b0	\N	silver	O'Brien \\ 张	{"why": ["SKU1 392.01 yuan x1 = 392.01", "tier silver x1.2", "470.412 floor 470"], "promotion": null, "birthday": false}
f1eb24ca-72d0-5a1f-a94c-7cd476b760f8	39	01a2450b-7b63-7043-93e7-2c749a586c1c	1796451115297426	t	cash	40002	800	0	39202	470	0	01a2450b-7b84-7a73-bf3e-8d121bab3e85	\N	silver	ann	{"why": ["SKU1 392.02 yuan x1 = 392.02", "tier silver x1.2", "470.424 floor 470"], "promotion": null, "birthday": false}
4d2e6e40-3060-5bb5-a583-3a90359734db	41	01a2450b-7b5b-74e3-9b01-3113d356bfde	1796451116297426	t	cash	40003	800	0	39203	470	0	01a2450b-7b86-70c3-9492-8dddc6ee025e	\N	silver	O'Brien \\ 张	{"why": ["SKU1 392.03 yuan x1 = 392.03", "tier silver x1.2", "470.436 floor 470"], "promotion": null, "birthday": false}
ee9c9859-aa9b-5a0c-a409-e16802e424a8	43	\N	1796451117297426	t	cash	40004	0	0	40004	0	0	\N	\N		ann	{"why": [], "promotion": null, "birthday": false}
08e7b9f4-a523-5328-97b3-e184db2caa67	44	01a2450b-7b63-7043-93e7-2c749a586c1c	1796451118297426	t	cash	40005	800	0	39205	470	0	01a2450b-7b87-797c-92bf-8ba66f80f86f	\N	silver	O'Brien \\ 张	{"why": ["SKU1 392.05 yuan x1 = 392.05", "tier silver x1.2", "470.46 floor 470"], "promotion": null, "birthday": false}
7828b86f-22b3-54fd-8944-47a54ba96cc4	46	01a2450b-7b5b-74e3-9b01-3113d356bfde	1796451119297426	t	cash	40006	800	0	39206	470	0	01a2450b-7b89-70fe-898c-72bbfb030b24	\N	silver	ann	{"why": ["SKU1 392.06 yuan x1 = 392.06", "tier silver x1.2", "470.472 floor 470"], "promotion": null, "birthday": false}
ba6318a9-edcf-5d76-94d5-9650c8d29e75	48	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451120297426	t	cash	40007	800	0	39207	470	0	01a2450b-7b8a-71af-b6ea-de59c0256494	\N	silver	O'Brien \\ 张	{"why": ["SKU1 392.07 yuan x1 = 392.07", "tier silver x1.2", "470.484 floor 470"], "promotion": null, "birthday": false}
e6922067-6b41-572a-8ac3-ec5d7380725f	50	\N	1796451121297426	t	cash	40008	0	0	40008	0	0	\N	\N		ann	{"why": [], "promotion": null, "birthday": false}
b74d6dac-b2a8-5d40-b090-0c84cc4353bd	51	01a2450b-7b5b-74e3-9b01-3113d356bfde	1796451122297426	t	cash	40009	800	0	39209	470	0	01a2450b-7b8b-70cd-80f9-6056d5acff2c	\N	silver	O'Brien \\ 张	{"why": ["SKU1 392.09 yuan x1 = 392.09", "tier silver x1.2", "470.508 floor 470"], "promotion": null, "birthday": false}
3bd1b441-84a7-5105-86cf-ff9ee5bdf63e	53	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451123297426	t	cash	40010	800	0	39210	470	0	01a2450b-7b8d-7cb1-be2e-97e30210c909	\N	silver	ann	{"why": ["SKU1 392.1 yuan x1 = 392.1", "tier silver x1.2", "470.52 floor 470"], "promotion": null, "birthday": false}
8e54b3e9-9659-546d-89e3-22b882cb8e3e	55	01a2450b-7b63-7043-93e7-2c749a586c1c	1796451124297426	t	cash	40011	800	0	39211	470	0	01a2450b-7b8e-75e9-b8b8-71637ccf378c	\N	silver	O'Brien \\ 张	{"why": ["SKU1 392.11 yuan x1 = 392.11", "tier silver x1.2", "470.532 floor 470"], "promotion": null, "birthday": false}
d65ab765-7630-5062-8be0-c9c0c2207adb	57	01a2450b-7b60-7dca-9ca7-d76b707670fa	1796451125297426	t	cash	60000	1200	500	58300	699	500	01a2450b-7b90-73bd-a0aa-27cfdf0be804	01a2450b-7b90-7b41-a1d3-6139bb9ad3f4	silver	ann	{"why": ["SKU1 583 yuan x1 = 583", "tier silver x1.2", "699.6 floor 699"], "promotion": null, "birthday": false}
\.


--
-- Data for Name: sale_line; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.sale_line (sale_id, line_no, sku, name, category, qty, price_fen, list_fen, paid_fen) FROM stdin;
81d9eae4-0245-5965-b000-39d6b310d5f2	1	SKU1	伞 'x' \\%s		1	40000	40000	40000
654348af-aaf7-5d02-9f1b-dc64e524b478	1	SKU1	伞 'x' \\%s		1	40001	40001	40001
9367e77a-b40e-5eb5-be8f-cc9c2898b38c	1	SKU1	伞 'x' \\%s		1	40002	40002	40002
cf5aeaae-ab98-5c22-aa27-44f41c618d6d	1	SKU1	伞 'x' \\%s		1	40003	40003	40003
e97f39d8-1b78-52f3-9d58-a8d7495c84f4	1	SKU1	伞 'x' \\%s		1	40004	40004	40004
e3e70ea4-3a8a-5db8-8e29-c9ed78b9ba33	1	SKU1	伞 'x' \\%s		1	40005	40005	40005
da9c47f7-5fdf-5ec7-803c-eca6ebe3b0c3	1	SKU1	伞 'x' \\%s		1	40006	40006	40006
d9964395-08f5-56e9-9678-c17f6ff39369	1	SKU1	伞 'x' \\%s		1	40007	40007	40007
f363c935-c296-5b83-b739-0389304e562f	1	SKU1	伞 'x' \\%s		1	40008	40008	40008
b9f978b9-c81d-5ba3-a0d7-7192f94ffd80	1	SKU1	伞 'x' \\%s		1	40009	40009	40009
77df9a9c-513a-5c23-9f69-7c98650dc67a	1	SKU1	伞 'x' \\%s		1	40010	40010	40010
f2e543ca-9e78-5014-bb71-31ccafd07f53	1	SKU1	伞 'x' \\%s		1	40011	40011	40011
8a0eb200-7370-5f16-b4fc-4fb3f8c1ebdc	1	SKU1	item		1	60000	60000	58300
79622d9d-68c6-5fdd-9ca6-33ef3d7e64b5	1	SKU1	伞 'x' \\%s		1	40000	40000	40000
8b589c78-7f4f-58ff-985f-f351f82b51c4	1	SKU1	伞 'x' \\%s		1	40001	40001	39201
f1eb24ca-72d0-5a1f-a94c-7cd476b760f8	1	SKU1	伞 'x' \\%s		1	40002	40002	39202
4d2e6e40-3060-5bb5-a583-3a90359734db	1	SKU1	伞 'x' \\%s		1	40003	40003	39203
ee9c9859-aa9b-5a0c-a409-e16802e424a8	1	SKU1	伞 'x' \\%s		1	40004	40004	40004
08e7b9f4-a523-5328-97b3-e184db2caa67	1	SKU1	伞 'x' \\%s		1	40005	40005	39205
7828b86f-22b3-54fd-8944-47a54ba96cc4	1	SKU1	伞 'x' \\%s		1	40006	40006	39206
ba6318a9-edcf-5d76-94d5-9650c8d29e75	1	SKU1	伞 'x' \\%s		1	40007	40007	39207
e6922067-6b41-572a-8ac3-ec5d7380725f	1	SKU1	伞 'x' \\%s		1	40008	40008	40008
b74d6dac-b2a8-5d40-b090-0c84cc4353bd	1	SKU1	伞 'x' \\%s		1	40009	40009	39209
3bd1b441-84a7-5105-86cf-ff9ee5bdf63e	1	SKU1	伞 'x' \\%s		1	40010	40010	39210
8e54b3e9-9659-546d-89e3-22b882cb8e3e	1	SKU1	伞 'x' \\%s		1	40011	40011	39211
d65ab765-7630-5062-8be0-c9c0c2207adb	1	SKU1	item		1	60000	60000	58300
\.


--
-- Data for Name: terminal_seen; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.terminal_seen (store, terminal, online, epoch, version, rule_version, backlog, devices, rejected, last_seen_us) FROM stdin;
S001	T01	t	3	0.1.0	1	0	{"printer": "ok"}		1796115600000000
\.


--
-- Name: allocation_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.allocation_id_seq', 9, true);


--
-- Name: audit_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.audit_id_seq', 7, true);


--
-- Name: allocation allocation_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.allocation
    ADD CONSTRAINT allocation_pkey PRIMARY KEY (id);


--
-- Name: applied_event applied_event_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.applied_event
    ADD CONSTRAINT applied_event_pkey PRIMARY KEY (id);


--
-- Name: audit audit_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit
    ADD CONSTRAINT audit_pkey PRIMARY KEY (id);


--
-- Name: daily_report daily_report_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.daily_report
    ADD CONSTRAINT daily_report_pkey PRIMARY KEY (id);


--
-- Name: exchange exchange_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.exchange
    ADD CONSTRAINT exchange_pkey PRIMARY KEY (id);


--
-- Name: ledger_entry ledger_entry_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_entry
    ADD CONSTRAINT ledger_entry_pkey PRIMARY KEY (id);


--
-- Name: lot lot_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.lot
    ADD CONSTRAINT lot_pkey PRIMARY KEY (id);


--
-- Name: member_day member_day_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.member_day
    ADD CONSTRAINT member_day_pkey PRIMARY KEY (member_id, day);


--
-- Name: member_hold member_hold_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.member_hold
    ADD CONSTRAINT member_hold_pkey PRIMARY KEY (id);


--
-- Name: member member_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.member
    ADD CONSTRAINT member_pkey PRIMARY KEY (id);


--
-- Name: meta meta_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.meta
    ADD CONSTRAINT meta_pkey PRIMARY KEY (key);


--
-- Name: operator operator_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.operator
    ADD CONSTRAINT operator_pkey PRIMARY KEY (name);


--
-- Name: outbox outbox_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outbox
    ADD CONSTRAINT outbox_pkey PRIMARY KEY (id);


--
-- Name: product product_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.product
    ADD CONSTRAINT product_pkey PRIMARY KEY (sku);


--
-- Name: refund_line refund_line_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.refund_line
    ADD CONSTRAINT refund_line_pkey PRIMARY KEY (refund_id, line_no);


--
-- Name: refund refund_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.refund
    ADD CONSTRAINT refund_pkey PRIMARY KEY (id);


--
-- Name: sale_line sale_line_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sale_line
    ADD CONSTRAINT sale_line_pkey PRIMARY KEY (sale_id, line_no);


--
-- Name: sale sale_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sale
    ADD CONSTRAINT sale_pkey PRIMARY KEY (id);


--
-- Name: terminal_seen terminal_seen_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.terminal_seen
    ADD CONSTRAINT terminal_seen_pkey PRIMARY KEY (store, terminal);


--
-- Name: allocation_entry_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX allocation_entry_id ON public.allocation USING btree (entry_id);


--
-- Name: allocation_lot_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX allocation_lot_id ON public.allocation USING btree (lot_id);


--
-- Name: applied_event_store_terminal_seq; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX applied_event_store_terminal_seq ON public.applied_event USING btree (store, terminal, seq);


--
-- Name: audit_seq; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX audit_seq ON public.audit USING btree (seq);


--
-- Name: daily_report_seq; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX daily_report_seq ON public.daily_report USING btree (seq);


--
-- Name: exchange_member_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX exchange_member_id ON public.exchange USING btree (member_id);


--
-- Name: exchange_seq; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX exchange_seq ON public.exchange USING btree (seq);


--
-- Name: ledger_entry_member_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ledger_entry_member_id ON public.ledger_entry USING btree (member_id);


--
-- Name: ledger_entry_member_id_seq; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ledger_entry_member_id_seq ON public.ledger_entry USING btree (member_id, seq);


--
-- Name: ledger_entry_sale_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ledger_entry_sale_id ON public.ledger_entry USING btree (sale_id);


--
-- Name: ledger_entry_seq; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ledger_entry_seq ON public.ledger_entry USING btree (seq);


--
-- Name: lot_member_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX lot_member_id ON public.lot USING btree (member_id);


--
-- Name: lot_member_id_expires_us; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX lot_member_id_expires_us ON public.lot USING btree (member_id, expires_us);


--
-- Name: member_card_hash; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX member_card_hash ON public.member USING btree (card_hash);


--
-- Name: member_day_member_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX member_day_member_id ON public.member_day USING btree (member_id);


--
-- Name: member_hold_card_hash; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX member_hold_card_hash ON public.member_hold USING btree (card_hash);


--
-- Name: member_phone_hash; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX member_phone_hash ON public.member USING btree (phone_hash);


--
-- Name: member_referrer_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX member_referrer_id ON public.member USING btree (referrer_id);


--
-- Name: outbox_acked_us; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX outbox_acked_us ON public.outbox USING btree (acked_us);


--
-- Name: outbox_seq; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX outbox_seq ON public.outbox USING btree (seq);


--
-- Name: product_barcode; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX product_barcode ON public.product USING btree (barcode);


--
-- Name: refund_line_refund_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX refund_line_refund_id ON public.refund_line USING btree (refund_id);


--
-- Name: refund_sale_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX refund_sale_id ON public.refund USING btree (sale_id);


--
-- Name: refund_seq; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX refund_seq ON public.refund USING btree (seq);


--
-- Name: sale_line_sale_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sale_line_sale_id ON public.sale_line USING btree (sale_id);


--
-- Name: sale_member_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sale_member_id ON public.sale USING btree (member_id);


--
-- Name: sale_member_id_wall_us; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sale_member_id_wall_us ON public.sale USING btree (member_id, wall_us);


--
-- Name: sale_seq; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX sale_seq ON public.sale USING btree (seq);


--
-- Name: sale_wall_us; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sale_wall_us ON public.sale USING btree (wall_us);


--
-- Name: allocation allocation_entry_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.allocation
    ADD CONSTRAINT allocation_entry_id_fkey FOREIGN KEY (entry_id) REFERENCES public.ledger_entry(id);


--
-- Name: allocation allocation_lot_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.allocation
    ADD CONSTRAINT allocation_lot_id_fkey FOREIGN KEY (lot_id) REFERENCES public.lot(id);


--
-- Name: exchange exchange_member_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.exchange
    ADD CONSTRAINT exchange_member_id_fkey FOREIGN KEY (member_id) REFERENCES public.member(id);


--
-- Name: ledger_entry ledger_entry_member_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_entry
    ADD CONSTRAINT ledger_entry_member_id_fkey FOREIGN KEY (member_id) REFERENCES public.member(id);


--
-- Name: lot lot_member_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.lot
    ADD CONSTRAINT lot_member_id_fkey FOREIGN KEY (member_id) REFERENCES public.member(id);


--
-- Name: member_day member_day_member_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.member_day
    ADD CONSTRAINT member_day_member_id_fkey FOREIGN KEY (member_id) REFERENCES public.member(id);


--
-- Name: member member_referrer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.member
    ADD CONSTRAINT member_referrer_id_fkey FOREIGN KEY (referrer_id) REFERENCES public.member(id);


--
-- Name: refund_line refund_line_refund_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.refund_line
    ADD CONSTRAINT refund_line_refund_id_fkey FOREIGN KEY (refund_id) REFERENCES public.refund(id);


--
-- Name: refund refund_sale_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.refund
    ADD CONSTRAINT refund_sale_id_fkey FOREIGN KEY (sale_id) REFERENCES public.sale(id);


--
-- Name: sale_line sale_line_sale_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sale_line
    ADD CONSTRAINT sale_line_sale_id_fkey FOREIGN KEY (sale_id) REFERENCES public.sale(id);


--
-- Name: sale sale_member_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sale
    ADD CONSTRAINT sale_member_id_fkey FOREIGN KEY (member_id) REFERENCES public.member(id);


--
-- PostgreSQL database dump complete
--

\unrestrict ZXwbg0Bj5zX5o4U8HFJqwdL4e5gmzYqPwHUIOpa1Un1i3oXFksuH78Dpg93PJkY

