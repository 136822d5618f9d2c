"""Test helper for the storage tests: make a container/bucket, put raw bytes, fetch a prefix.

    bucket.py azure|s3 ENDPOINT create NAME
    bucket.py azure|s3 ENDPOINT put NAME KEY FILE
    bucket.py azure ENDPOINT append NAME KEY FILE   (an append blob, created when missing)
    bucket.py azure|s3 ENDPOINT get NAME PREFIX DIR
"""
import pathlib
import sys

# Azurite's well-known development account (public, documented by Microsoft).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azure(endpoint):
    from azure.storage.blob import BlobServiceClient

    conn = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={endpoint}/{ACCOUNT};")
    return BlobServiceClient.from_connection_string(conn)


def s3(endpoint):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                        aws_secret_access_key="test", region_name="us-east-1")


def main(kind, endpoint, verb, name, *rest):
    if kind == "azure":
        svc = azure(endpoint)
        if verb == "create":
            svc.create_container(name)
        elif verb == "put":
            key, file = rest
            svc.get_blob_client(name, key).upload_blob(pathlib.Path(file).read_bytes(), overwrite=True)
        elif verb == "append":
            key, file = rest
            blob = svc.get_blob_client(name, key)
            if not blob.exists():
                blob.create_append_blob()
            blob.append_block(pathlib.Path(file).read_bytes())
        elif verb == "get":
            prefix, out = rest
            cont = svc.get_container_client(name)
            for blob in cont.list_blobs(name_starts_with=prefix):
                dest = pathlib.Path(out) / blob.name[len(prefix):].lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(cont.download_blob(blob.name).readall())
    else:
        cli = s3(endpoint)
        if verb == "create":
            cli.create_bucket(Bucket=name)
        elif verb == "put":
            key, file = rest
            cli.put_object(Bucket=name, Key=key, Body=pathlib.Path(file).read_bytes())
        elif verb == "get":
            prefix, out = rest
            for page in cli.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=prefix):
                for obj in page.get("Contents", []):
                    dest = pathlib.Path(out) / obj["Key"][len(prefix):].lstrip("/")
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(cli.get_object(Bucket=name, Key=obj["Key"])["Body"].read())


if __name__ == "__main__":
    main(*sys.argv[1:])
